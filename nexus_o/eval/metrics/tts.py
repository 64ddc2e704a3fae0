"""TTS intelligibility, Seed-TTS eval protocol: synthesise each text, transcribe the audio with an
ASR model, score the transcripts against the texts (WER for English, CER for Mandarin, mean over
utterances, punctuation removed, lower-cased; see `asr.error_rate`).

The TTS and ASR backends are injected as plain callables, so any engine (the paper's, or the tiny
world's piper/espeak voices and Whisper tiny) plugs in without this module knowing it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from nexus_o.eval.metrics.asr import error_rate
from nexus_o.eval.metrics.inputs import MetricInputError
from nexus_o.eval.metrics.normalizers import check_lang

Synthesize = Callable[[str], tuple[np.ndarray, int]]
Transcribe = Callable[[np.ndarray, int], str]


def _checked_audio(out: object, index: int, text: str) -> tuple[np.ndarray, int]:
    """Validate what `synthesize` returned: (wav[T] float, sample_rate > 0)."""
    where = f"synthesize(texts[{index}] = {text[:40]!r})"
    if not isinstance(out, tuple) or len(out) != 2:
        raise MetricInputError(f"{where} must return (wav, sample_rate), got {type(out).__name__}")
    wav, sample_rate = np.asarray(out[0]), out[1]
    if wav.ndim != 1 or not np.issubdtype(wav.dtype, np.floating):
        raise MetricInputError(
            f"{where} returned wav of shape {wav.shape} and dtype {wav.dtype}; expected mono float [T]"
        )
    is_int = isinstance(sample_rate, (int, np.integer)) and not isinstance(sample_rate, bool)
    if not is_int or sample_rate <= 0:
        raise MetricInputError(f"{where} returned sample rate {sample_rate!r}; expected a positive int")
    return wav, int(sample_rate)


def tts_intelligibility(
    texts: Sequence[str],
    synthesize: Synthesize,
    transcribe: Transcribe,
    lang: str,
    progress: bool = True,
) -> dict:
    """Synthesise, transcribe and score `texts` with the Seed-TTS protocol.

    Args:
        texts: TTS input texts.
        synthesize: text -> (wav[T] float mono, sample_rate).
        transcribe: (wav[T], sample_rate) -> transcript.
        lang: "en" (WER) or "zh" (CER).
        progress: show a tqdm bar.

    Returns:
        `ErrorRateResult.to_dict()` (score = mean per-utterance rate, with the summed counts), plus
        "transcripts" (one per text), "per_utterance" (rate per text, None for a text with nothing
        to score) and "audio_seconds" (total synthesised duration).
    """
    check_lang(lang)
    if isinstance(texts, str) or len(texts) == 0:
        raise MetricInputError("texts must be a non-empty sequence of strings")
    transcripts: list[str] = []
    seconds = 0.0
    for k, text in enumerate(tqdm(texts, desc="tts intelligibility", unit="utt", disable=not progress)):
        wav, sample_rate = _checked_audio(synthesize(text), k, text)
        seconds += wav.shape[0] / sample_rate
        transcript = transcribe(wav, sample_rate)
        if not isinstance(transcript, str):
            kind = type(transcript).__name__
            raise MetricInputError(f"transcribe returned {kind} for texts[{k}]; expected str")
        transcripts.append(transcript)
    result = error_rate(
        texts, transcripts, lang, protocol="seed-tts", ref_name="texts", hyp_name="transcripts"
    )
    return {
        **result.to_dict(),
        "transcripts": transcripts,
        "per_utterance": list(result.per_utterance),
        "audio_seconds": seconds,
    }
