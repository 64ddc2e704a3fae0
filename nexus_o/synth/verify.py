"""ASR round-trip verification of synthesised speech (paper §3.2, SPEC §3).

Each synthesised sample is transcribed and compared with its source text: WER for English, CER
for Mandarin, after the evaluation normalisers (`nexus_o.eval.metrics`: Whisper's English
normaliser; for Chinese, traditional -> simplified, punctuation and spaces removed). A sample is
kept when its error rate is at most the threshold of its language; the score is recorded either
way so that thresholds can be tuned afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from nexus_o.eval.metrics import EmptyReferencesError, utterance_error_rate
from nexus_o.speech.asr.base import ASRBackend
from nexus_o.speech.language import check_language, detect_language

METRIC_FOR_LANGUAGE = {"en": "wer", "zh": "cer"}


@dataclass(frozen=True)
class Verification:
    """The outcome of one round trip.

    Attributes:
        passed: the sample is kept.
        score: WER (en) or CER (zh) of the transcript against the source text; inf when the
            source text has nothing left to compare after normalisation.
        metric: "wer" or "cer".
        transcript: what the ASR heard.
        confidence: the ASR's own confidence (see `Transcript`).
        reason: None when passed, else "asr_mismatch" or "empty_reference".
    """

    passed: bool
    score: float
    metric: str
    transcript: str
    confidence: float
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def score_transcript(reference: str, transcript: str, language: str, protocol: str = "default") -> float:
    """WER ("en") or CER ("zh") of `transcript` against `reference`, after normalisation.

    Raises:
        EmptyReferencesError: `reference` is empty after normalisation.
    """
    check_language(language)
    return utterance_error_rate(reference, transcript, language, protocol=protocol)


class ASRVerifier:
    """Keeps a synthesised sample only if an ASR model hears its text closely enough.

    Args:
        asr: one backend for every language, or language -> backend (e.g. Whisper tiny.en for
            "en" and multilingual Whisper base for "zh").
        max_wer: highest English WER kept (0.2 = 20 %).
        max_cer: highest Mandarin CER kept.
        protocol: normalisation protocol of `nexus_o.eval.metrics` ("default" or "seed-tts").
    """

    def __init__(
        self,
        asr: ASRBackend | Mapping[str, ASRBackend],
        max_wer: float = 0.2,
        max_cer: float = 0.2,
        protocol: str = "default",
    ):
        if isinstance(asr, Mapping):
            for language in asr:
                check_language(language)
            self.asr = dict(asr)
        else:
            self.asr = {"en": asr, "zh": asr}
        for name, value in (("max_wer", max_wer), ("max_cer", max_cer)):
            if not 0.0 <= value:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.thresholds = {"en": max_wer, "zh": max_cer}
        self.protocol = protocol

    def check(
        self, wav: np.ndarray, sample_rate: int, text: str, language: str | None = None
    ) -> Verification:
        """Transcribe `wav` ([T] float mono) and compare it with `text`.

        Args:
            language: "en" or "zh"; detected from `text` when None.

        Raises:
            ValueError: no ASR backend for the language.
        """
        language = check_language(language) if language is not None else detect_language(text)
        backend = self.asr.get(language)
        if backend is None:
            raise ValueError(f"no ASR backend for {language!r} texts; have {sorted(self.asr)}")
        transcript = backend.transcribe(wav, sample_rate, language=language)
        metric = METRIC_FOR_LANGUAGE[language]
        try:
            score = score_transcript(text, transcript.text, language, self.protocol)
        except EmptyReferencesError:
            return Verification(
                False, float("inf"), metric, transcript.text, transcript.confidence, "empty_reference"
            )
        passed = score <= self.thresholds[language]
        return Verification(
            passed, score, metric, transcript.text, transcript.confidence, None if passed else "asr_mismatch"
        )
