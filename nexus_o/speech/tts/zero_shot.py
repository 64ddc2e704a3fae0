"""Zero-shot TTS slot: the paper's CosyVoice 2 (and fish-speech) for users who have them.

The paper synthesises speech with CosyVoice's zero-shot in-context generation: each speaker is a
short prompt recording plus its transcript, and the model speaks new text in that voice. Neither
the code nor the weights ship on a package registry, so this backend works once the user has
both; until then, building it raises `BackendUnavailableError` saying what to install.

CosyVoice 2 setup:
  1. git clone https://github.com/FunAudioLLM/CosyVoice (with its submodules), install its
     requirements, and put the clone and its third_party/Matcha-TTS on PYTHONPATH;
  2. download the CosyVoice2-0.5B model folder and pass it as `model_dir`;
  3. build speakers with `prompt_speakers([(prompt.wav, "its transcript", "zh"), ...])`.

fish-speech: its Python inference API changes from release to release, so there is no built-in
adapter. Serve it with its own API server and wrap the HTTP call in a class with
`synthesize(text, speaker) -> (wav, sample_rate)` (the `TTSBackend` protocol), or use its
FireFly codec through nexus-o's codec plug-ins.
"""

from __future__ import annotations

from collections.abc import Iterable
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

COSYVOICE2_HELP = (
    "CosyVoice 2 is not installed: clone https://github.com/FunAudioLLM/CosyVoice, install its "
    "requirements, add the clone and its third_party/Matcha-TTS to PYTHONPATH, and pass the "
    "CosyVoice2-0.5B model folder (see nexus_o/speech/tts/zero_shot.py)"
)
FISH_SPEECH_HELP = (
    "fish-speech has no built-in adapter (its Python API is not stable across releases): run its "
    "API server and wrap the HTTP call in a class with synthesize(text, speaker) -> (wav, "
    "sample_rate), see nexus_o/speech/tts/zero_shot.py"
)


def _to_numpy(speech) -> np.ndarray:
    """A [1, T] torch tensor (any device) or array -> float32 [T]."""
    if hasattr(speech, "detach"):
        speech = speech.detach().float().cpu().numpy()
    return np.asarray(speech, dtype=np.float32).reshape(-1)


def prompt_speakers(
    prompts: Iterable[tuple[str | Path, str, str]], backend: str = "cosyvoice2"
) -> list[Speaker]:
    """Zero-shot speakers from (prompt wav path, its transcript, language) triples.

    Raises:
        FileNotFoundError: a prompt recording does not exist.
    """
    speakers = []
    for wav_path, transcript, language in prompts:
        if not Path(wav_path).is_file():
            raise FileNotFoundError(f"speaker prompt recording not found: {wav_path}")
        speakers.append(Speaker(backend, str(wav_path), language, prompt_text=transcript))
    return speakers


class CosyVoice2Backend:
    """CosyVoice 2 zero-shot TTS: `synthesize(text, speaker) -> (wav [T] float32, sample_rate)`.

    Args:
        model_dir: the CosyVoice2-0.5B folder (holds cosyvoice2.yaml).

    Raises:
        FileNotFoundError: `model_dir` is not a CosyVoice 2 model folder.
        BackendUnavailableError: the `cosyvoice` package cannot be imported (message says how).
    """

    name = "cosyvoice2"
    languages = ("en", "zh")

    def __init__(self, model_dir: str | Path):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "cosyvoice2.yaml").is_file():
            raise FileNotFoundError(
                f"{self.model_dir} is not a CosyVoice 2 model folder (no cosyvoice2.yaml); "
                "download CosyVoice2-0.5B and pass its folder"
            )
        try:
            from cosyvoice.cli.cosyvoice import CosyVoice2
            from cosyvoice.utils.file_utils import load_wav
        except ImportError as err:
            raise BackendUnavailableError(COSYVOICE2_HELP) from err
        self._load_wav = load_wav
        self._model = CosyVoice2(str(self.model_dir), load_jit=False, load_trt=False, fp16=False)
        self.sample_rate = int(self._model.sample_rate)

    def voice_space(self, language: str) -> VoiceSpace:
        """Zero-shot speakers are prompt recordings, not a grid: use `prompt_speakers`."""
        raise ValueError(
            "cosyvoice2 speakers are prompt recordings: build them with "
            "nexus_o.speech.tts.zero_shot.prompt_speakers([(wav, transcript, language), ...])"
        )

    def synthesize(self, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
        """Speak `text` in the voice of `speaker.voice` (a prompt wav) with transcript `prompt_text`."""
        check_speaker(self.name, speaker, self.languages)
        if not speaker.prompt_text:
            raise ValueError(
                f"zero-shot speaker {speaker.name} needs prompt_text (its recording's transcript)"
            )
        try:
            prompt = self._load_wav(speaker.voice, 16000)
            outputs = self._model.inference_zero_shot(
                text, speaker.prompt_text, prompt, stream=False, speed=speaker.rate
            )
            pieces = [_to_numpy(out["tts_speech"]) for out in outputs]
        except Exception as err:  # model failures on one text: record it and go on
            raise SynthesisError(f"cosyvoice2 failed: {type(err).__name__}: {err}", text, speaker) from err
        if not pieces or sum(p.size for p in pieces) == 0:
            raise SynthesisError("cosyvoice2 produced no audio", text, speaker)
        return to_float32(np.concatenate(pieces)), self.sample_rate
