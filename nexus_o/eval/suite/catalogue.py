"""The paper's benchmarks: where their data sits under the data root and where their figures go.

Audio benchmarks (Tables 3-6) run in `run_suite`; the vision benchmarks (Table 2) and the authors'
in-house set are listed in `NOT_RUN` with the reason, so the report accounts for every column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nexus_o.eval.suite import layouts
from nexus_o.eval.tasks import EvalError


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: `folder` (under the data root) read by `read`, or a ready manifest at `folder`.

    task/lang: the `nexus-o eval` task and the language its figure is reported in; table/column:
    its cell in `paper_results.json`.
    """

    name: str
    title: str
    task: str
    lang: str
    table: str
    column: str
    folder: str
    read: Callable[[Path], list[dict]] | None = None  # None: `folder` is a manifest file

    def path(self, data_root: Path) -> Path:
        return data_root / self.folder


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("librispeech_test_clean", "LibriSpeech test-clean", "asr", "en", "asr", "librispeech_tc",
              "LibriSpeech/test-clean", layouts.librispeech),
    Benchmark("librispeech_test_other", "LibriSpeech test-other", "asr", "en", "asr", "librispeech_to",
              "LibriSpeech/test-other", layouts.librispeech),
    Benchmark("aishell2_test", "AISHELL-2 test (iOS/Android/Mic)", "asr", "zh", "asr", "aishell2", "AISHELL-2",
              layouts.aishell2),
    Benchmark("covost2_zh_en", "CoVoST2 zh-en", "s2tt", "en", "s2tt", "covost2_zh_en", "covost2/zh-CN",
              layouts.covost2("zh-CN", "en")),
    Benchmark("covost2_en_zh", "CoVoST2 en-zh", "s2tt", "zh", "s2tt", "covost2_en_zh", "covost2/en",
              layouts.covost2("en", "zh-CN")),
    Benchmark("llama_questions", "LLaMA Questions", "sqa", "en", "sqa", "llama_q", "llama_questions/test.jsonl"),
    Benchmark("seed_tts_en", "Seed-TTS test-en", "tts", "en", "tts", "seed_tts_en", "seedtts_testset/en",
              layouts.seed_tts("en")),
    Benchmark("seed_tts_zh", "Seed-TTS test-zh", "tts", "zh", "tts", "seed_tts_zh", "seedtts_testset/zh",
              layouts.seed_tts("zh")),
)

HARNESS_REASON = "Table 2 (vision) runs inside VLMEvalKit or lmms-eval with their own parsers and judges; see docs/harnesses.md"
NOT_RUN: dict[str, tuple[str, str, str]] = {  # name: (title, table, reason)
    **{key: (label, "vqa", HARNESS_REASON) for key, label in (
        ("video_mme", "Video-MME"), ("mmmu", "MMMU"), ("mathv", "MathVista"), ("hal", "HallusionBench"),
        ("ai2d", "AI2D"), ("ocr", "OCRBench"), ("mmvet", "MMVet"), ("mme", "MME"))},
    "nexus_o_audio_zh": ("NEXUS-O-audio (zh)", "asr", "the authors' in-house real-scenario test set is not released"),
    "nexus_o_audio_en": ("NEXUS-O-audio (en)", "asr", "the authors' in-house real-scenario test set is not released"),
}

NORMALISERS = {
    ("asr", "en"): "Whisper English normaliser; corpus WER",
    ("asr", "zh"): "punctuation stripped, traditional->simplified (OpenCC t2s), per character; corpus CER",
    ("s2tt", "en"): "sacrebleu corpus BLEU, tokenizer 13a, detokenised and case-sensitive",
    ("s2tt", "zh"): "sacrebleu corpus BLEU, tokenizer zh, detokenised",
    ("sqa", "en"): "Whisper English normaliser; an acceptable answer appears (whole words) in the reply",
    ("tts", "en"): "Seed-TTS: punctuation removed, lower-cased; mean of per-utterance WER",
    ("tts", "zh"): "Seed-TTS: punctuation removed, traditional->simplified, per character; mean of per-utterance CER",
}


def get_benchmarks(names: str | None) -> list[Benchmark]:
    """All benchmarks, or those named in a comma-separated list (unknown names are errors)."""
    if not names:
        return list(BENCHMARKS)
    known = {b.name: b for b in BENCHMARKS}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise EvalError(f"unknown benchmark(s) {unknown}; expected some of {', '.join(known)}")
    return [known[n] for n in wanted]
