"""Codec fixtures: a speech-like synthetic signal and a tiny built-in codec fitted on it in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nexus_o.codecs.builtin import BuiltinCodec, fit_builtin_codec
from nexus_o.codecs.firefly import FireflyCodec, FireflyConfig

RATE = 22050


def speechlike(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Voiced segments (gliding f0, 12 harmonics, syllable envelope) and noise bursts: float32 ``[T]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 13))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6)), 0, None)
    noise = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 1.7 * t) > 0.6)
    return (0.25 * voiced * envelope + 0.05 * noise).astype(np.float32)


@pytest.fixture(autouse=True)
def _convolutions_on_one_thread(one_thread):
    """Every codec test on one thread (tests/conftest.py): on the shared 2-core CI box two threads
    run the convolutions several times slower."""


def as_wav(samples: np.ndarray) -> torch.Tensor:
    """``[T]`` -> ``[1, 1, T]`` tensor."""
    return torch.from_numpy(samples)[None, None]


@pytest.fixture(scope="session")
def builtin_codec() -> BuiltinCodec:
    """4 codebooks x 16 entries fitted on 3 s of synthetic signal (seeded)."""
    audio = [speechlike(1.5, seed=s) for s in range(2)]
    return fit_builtin_codec(audio, num_codebooks=4, codebook_size=16, iters=4, seed=0, progress=False)


TINY_FIREFLY = FireflyConfig(
    backbone_depths=(1, 1),
    backbone_dims=(8, 16),
    upsample_initial_channel=32,
    resblock_kernel_sizes=(3, 5),
    resblock_dilation_sizes=((1, 2), (1, 3)),
    pre_conv_kernel_size=5,
    post_conv_kernel_size=5,
    n_groups=2,
)


@pytest.fixture(scope="session")
def tiny_firefly() -> FireflyCodec:
    """FireFly with random weights at toy width (same layout and hop as 1.4)."""
    return FireflyCodec.random_init(TINY_FIREFLY, seed=0)
