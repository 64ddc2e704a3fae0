"""Evaluation metrics computed the way the field computes them (SPEC §4).

- ASR: `wer` (English, Whisper normaliser) and `cer` (Mandarin, t2s, per character), corpus level;
  `protocol="seed-tts"` gives the Seed-TTS eval variant (mean of per-utterance rates).
- Speech translation: `bleu` (sacrebleu corpus BLEU, tokenizer 13a into English, zh into Chinese).
- Spoken QA: `sqa_accuracy` (a reference answer appears in the normalised output).
- TTS: `tts_intelligibility` (synthesise -> transcribe -> Seed-TTS WER/CER).
- Normalisers reusable elsewhere (e.g. ASR round-trip checks in synthesis): `normalize_en`,
  `normalize_zh`, `seed_tts_normalize`, and `utterance_error_rate` for one pair.
"""

from nexus_o.eval.metrics.asr import ErrorRateResult, cer, error_rate, utterance_error_rate, wer
from nexus_o.eval.metrics.bleu import BleuResult, bleu
from nexus_o.eval.metrics.inputs import (
    EmptyReferencesError,
    LineCountMismatchError,
    MetricInputError,
    read_lines,
    read_paired,
)
from nexus_o.eval.metrics.normalizers import (
    normalize_answer,
    normalize_en,
    normalize_zh,
    seed_tts_normalize,
)
from nexus_o.eval.metrics.scoring import METRICS, score_files, score_texts
from nexus_o.eval.metrics.sqa import SqaResult, parse_answer_line, sqa_accuracy
from nexus_o.eval.metrics.tts import tts_intelligibility

__all__ = [
    "METRICS",
    "BleuResult",
    "EmptyReferencesError",
    "ErrorRateResult",
    "LineCountMismatchError",
    "MetricInputError",
    "SqaResult",
    "bleu",
    "cer",
    "error_rate",
    "normalize_answer",
    "normalize_en",
    "normalize_zh",
    "parse_answer_line",
    "read_lines",
    "read_paired",
    "score_files",
    "score_texts",
    "seed_tts_normalize",
    "sqa_accuracy",
    "tts_intelligibility",
    "utterance_error_rate",
    "wer",
]
