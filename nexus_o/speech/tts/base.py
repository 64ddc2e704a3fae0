"""The TTS interface of the synthesis pipeline: speakers, backends, speaker pools.

A backend turns (text, speaker) into mono float32 audio. A `Speaker` is a plain record of every
knob that makes a voice: which backend and voice, the language it speaks, an espeak-ng variant,
pitch, speaking rate, and the generator noise of neural voices. The paper draws a speaker at
random per sample from a pool of 2,000 per language; `sample_speakers` builds such a pool from
the axes a backend offers (`VoiceSpace`), deterministically from a seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from nexus_o.speech.language import check_language


class SynthesisError(RuntimeError):
    """One sample could not be synthesised; `reason` is short and goes into the rejects file."""

    def __init__(self, reason: str, text: str = "", speaker: Speaker | None = None):
        self.reason = reason
        self.text = text
        self.speaker = speaker
        where = f" for speaker {speaker.name}" if speaker is not None else ""
        super().__init__(f"synthesis failed{where}: {reason} (text: {text[:60]!r})")


class BackendUnavailableError(RuntimeError):
    """A backend's package or model files are missing; the message says what to install or pass."""


@dataclass(frozen=True)
class Speaker:
    """One voice configuration.

    Attributes:
        backend: registry name of the TTS backend ("espeak", "piper", "cosyvoice2").
        voice: backend voice: an espeak-ng language voice ("en-us", "cmn"), a piper model name,
            or for zero-shot backends the path of a prompt recording.
        language: "en" or "zh", the language this speaker is drawn for.
        variant: espeak-ng voice variant from espeak-ng-data/voices/!v ("f3", "m2"); None = none.
        pitch: espeak-ng base pitch 0-99 (50 is the voice's default); None = backend default.
        rate: speaking-rate factor, 1.0 = the backend's normal speed (espeak: 175 words a
            minute x rate; piper: length_scale = 1 / rate).
        noise_scale: generator noise of neural voices (piper's noise_scale); None = default.
        prompt_text: transcript of the prompt recording, for zero-shot backends.
    """

    backend: str
    voice: str
    language: str
    variant: str | None = None
    pitch: int | None = None
    rate: float = 1.0
    noise_scale: float | None = None
    prompt_text: str | None = None

    def __post_init__(self) -> None:
        check_language(self.language)
        if self.pitch is not None and not 0 <= self.pitch <= 99:
            raise ValueError(f"speaker pitch must be in 0..99, got {self.pitch}")
        if not (math.isfinite(self.rate) and 0.25 <= self.rate <= 4.0):
            raise ValueError(f"speaker rate must be a factor in 0.25..4.0, got {self.rate}")

    @property
    def name(self) -> str:
        """Compact id for manifests, e.g. "espeak:en-us+f3:p60:r1.1"."""
        parts = [f"{self.backend}:{self.voice}" + (f"+{self.variant}" if self.variant else "")]
        if self.pitch is not None:
            parts.append(f"p{self.pitch}")
        if self.rate != 1.0:
            parts.append(f"r{self.rate:g}")
        if self.noise_scale is not None:
            parts.append(f"n{self.noise_scale:g}")
        return ":".join(parts)

    def to_dict(self) -> dict:
        """JSON-ready fields (for manifests); `Speaker(**d)` rebuilds it."""
        return asdict(self)


class TTSBackend(Protocol):
    """What the synthesis pipeline needs from a TTS engine."""

    name: str

    def synthesize(self, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
        """Speak `text` with `speaker`.

        Returns:
            (wav [T] float32 mono in [-1, 1], sample_rate in Hz).

        Raises:
            SynthesisError: this sample failed (the caller records it and goes on).
            ValueError: the speaker does not belong to this backend.
        """
        ...

    def voice_space(self, language: str) -> VoiceSpace:
        """The axes from which this backend's speakers for `language` are combined."""
        ...


@dataclass(frozen=True)
class VoiceSpace:
    """The axes of a speaker pool; their product is every possible speaker.

    Attributes mirror `Speaker`; each tuple lists the values one axis takes.
    """

    backend: str
    language: str
    voices: tuple[str, ...]
    variants: tuple[str | None, ...] = (None,)
    pitches: tuple[int | None, ...] = (None,)
    rates: tuple[float, ...] = (1.0,)
    noise_scales: tuple[float | None, ...] = (None,)

    @property
    def axes(self) -> tuple[tuple, ...]:
        return (self.voices, self.variants, self.pitches, self.rates, self.noise_scales)

    @property
    def size(self) -> int:
        """Number of distinct speakers in the space."""
        return math.prod(len(axis) for axis in self.axes)

    def speaker(self, index: int) -> Speaker:
        """The `index`-th speaker of the product (mixed-radix decoding, voices vary slowest)."""
        values = []
        for axis in reversed(self.axes):
            index, k = divmod(index, len(axis))
            values.append(axis[k])
        voice, variant, pitch, rate, noise = reversed(values)
        return Speaker(self.backend, voice, self.language, variant, pitch, rate, noise)


def sample_speakers(space: VoiceSpace, size: int, seed: int) -> list[Speaker]:
    """`size` distinct speakers drawn from `space` without replacement, the same for the same seed.

    Raises:
        ValueError: `size` is not positive or exceeds `space.size`.
    """
    if size <= 0:
        raise ValueError(f"speaker pool size must be positive, got {size}")
    if size > space.size:
        raise ValueError(
            f"asked for {size} {space.language} speakers but backend {space.backend!r} offers "
            f"{space.size} distinct ones ({' x '.join(str(len(a)) for a in space.axes)})"
        )
    indices = random.Random(seed).sample(range(space.size), size)
    return [space.speaker(i) for i in indices]


def check_speaker(backend: str, speaker: Speaker, languages: tuple[str, ...]) -> None:
    """Raise ValueError if `speaker` is not meant for `backend` or speaks another language."""
    if speaker.backend != backend:
        raise ValueError(f"speaker {speaker.name} belongs to backend {speaker.backend!r}, not {backend!r}")
    if speaker.language not in languages:
        raise ValueError(f"backend {backend!r} speaks {languages}, not {speaker.language!r}")


def to_float32(wav: np.ndarray) -> np.ndarray:
    """int16 PCM or float audio [T] -> float32 [T] in [-1, 1]."""
    if wav.dtype == np.int16:
        return wav.astype(np.float32) / 32768.0
    return np.clip(wav.astype(np.float32, copy=False), -1.0, 1.0)
