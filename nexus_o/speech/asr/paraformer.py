"""Paraformer-zh through FunASR: the Chinese judge of the Seed-TTS eval protocol.

Seed-TTS eval transcribes Chinese speech with FunASR's `paraformer-zh` (SeACo-Paraformer large,
16 kHz, vocabulary 8404) and converts the text to simplified characters. The model folder is a
local FunASR/ModelScope model folder (config.yaml, model.pt, tokens, am.mvn, ...); FunASR is
told not to check for updates, so nothing is fetched. FunASR is not a dependency of nexus-o (it
needs torchaudio, whose CPU build for our torch is not on PyPI): install it beside the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nexus_o.speech.asr.base import ASR_SAMPLE_RATE, Transcript, to_16k
from nexus_o.speech.tts.base import BackendUnavailableError


class ParaformerBackend:
    """`transcribe(wav, sample_rate, language) -> Transcript` with a local FunASR Paraformer model.

    Args:
        model_dir: FunASR model folder (holds config.yaml).
        name: registry name reported in results.
    """

    languages = ("zh",)

    def __init__(self, model_dir: str | Path, name: str = ""):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.yaml").is_file():
            raise FileNotFoundError(f"{self.model_dir} is not a FunASR Paraformer folder (no config.yaml)")
        self.name = name or f"paraformer:{self.model_dir}"
        try:
            from funasr import AutoModel
        except ImportError as err:
            raise BackendUnavailableError("FunASR is not installed: pip install funasr (the Paraformer-zh judge "
                                          "of Seed-TTS eval; it needs torchaudio)") from err
        self.model = AutoModel(model=str(self.model_dir), disable_update=True, log_level="ERROR")

    def transcribe(self, wav: np.ndarray, sample_rate: int, language: str | None = None) -> Transcript:
        """Transcribe mono audio; `language` must be "zh" or None (Paraformer-zh is Mandarin only)."""
        if language not in (None, "zh"):
            raise ValueError(f"Paraformer-zh transcribes Mandarin only, asked for {language!r}")
        result = self.model.generate(input=to_16k(wav, sample_rate), fs=ASR_SAMPLE_RATE, batch_size_s=300)
        text = result[0]["text"] if result else ""
        return Transcript(text=text, confidence=1.0, language="zh")
