"""Stand-ins shared by the eval tests: an ASR that always hears the same words, a codec of tones."""

from __future__ import annotations

import torch

TTS_DECODER = {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "num_codebooks": 4,
               "codebook_size": 67, "codec_entries": 64, "llm_hidden_size": 64, "max_steps": 128}


class FixedASR:
    """An ASR backend that hears the same words whatever it is given."""

    name, languages = "fixed", ("en",)

    def __init__(self, text: str = "digit one"):
        self.text, self.calls = text, 0

    def transcribe(self, wav, sample_rate, language=None):
        self.calls += 1
        return type("T", (), {"text": self.text})()


class ToneCodec:
    """A codec that renders each frame as a tone whose pitch follows the first codebook."""

    name, sample_rate, samples_per_frame, num_codebooks, codebook_size = "tone", 16000, 160, 4, 64
    frame_rate = 100.0

    def decode(self, codes):  # [B, K, T] -> [B, 1, T * 160]
        t = torch.arange(self.samples_per_frame) / self.sample_rate
        pitch = 100.0 + 10.0 * codes[:, 0].float()
        return (0.3 * torch.sin(2 * torch.pi * pitch[..., None] * t)).reshape(codes.shape[0], 1, -1)
