"""The ASR interface of the synthesis pipeline: `transcribe(wav, sample_rate, language) -> Transcript`.

Used for the ASR round trip that verifies synthesised speech, and for the speech -> text branch.
Every backend takes mono float audio at any sample rate; `to_16k` resamples it (soxr, high
quality) because all the models here expect 16 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

ASR_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Transcript:
    """An ASR result.

    Attributes:
        text: the transcript (raw, not normalised).
        confidence: in [0, 1]; for Whisper exp(mean segment avg_logprob), for pocketsphinx the
            hypothesis posterior. Comparable within one backend only.
        language: the language the model decoded in, when it knows it.
    """

    text: str
    confidence: float
    language: str | None = None


class ASRBackend(Protocol):
    """What the synthesis pipeline needs from an ASR engine."""

    name: str

    def transcribe(self, wav: np.ndarray, sample_rate: int, language: str | None = None) -> Transcript:
        """Transcribe mono audio.

        Args:
            wav: [T] float audio in [-1, 1].
            sample_rate: its rate in Hz (resampled to 16 kHz inside).
            language: "en", "zh" or None (the model detects it, where it can).
        """
        ...


def to_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate mono float audio and resample it to 16 kHz.

    Args:
        wav: [T] float (or int16 PCM) samples.
        sample_rate: Hz, positive.

    Returns:
        [T * 16000 / sample_rate] float32.

    Raises:
        ValueError: not 1-D, empty, non-finite, or a bad sample rate.
    """
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"ASR expects mono audio of shape [T], got shape {wav.shape}")
    if wav.size == 0:
        raise ValueError("ASR got empty audio")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample rate must be a positive int, got {sample_rate!r}")
    wav = wav.astype(np.float32) / 32768.0 if wav.dtype == np.int16 else wav.astype(np.float32)
    if not np.isfinite(wav).all():
        raise ValueError("ASR got audio with NaN or infinite samples")
    if sample_rate != ASR_SAMPLE_RATE:
        import soxr

        wav = soxr.resample(wav, sample_rate, ASR_SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return wav


def check_language_support(backend: str, language: str | None, supported: tuple[str, ...]) -> None:
    """Raise ValueError if `language` is given and `backend` cannot transcribe it."""
    if language is not None and language not in supported:
        raise ValueError(f"ASR backend {backend!r} transcribes {supported}, not {language!r}")
