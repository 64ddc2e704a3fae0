"""Shared fixtures: the tiny preset and the small tiny world, built once per session, and small synthetic media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_flush_denormal(True)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test, restored after: tiny ops and convolutions run faster and
    far steadier on a shared 2-core CPU than with two threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny():
    """(model, processor) of the tiny preset, seeded, in eval mode."""
    from nexus_o.bundle.loading import build_preset

    model, processor = build_preset("tiny", seed=0)
    return model.eval(), processor


@pytest.fixture(scope="session")
def tiny_omni(tiny):
    """The `tiny` pair as an `OmniModel` without codec (text only)."""
    from nexus_o.bundle.omni import OmniModel

    return OmniModel(*tiny)


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> tuple[Path, dict]:
    """(folder, build report) of the small tiny world, seed 0; tests must not change its files."""
    from nexus_o.synth.tiny_world import build_tiny_world

    out = tmp_path_factory.mktemp("tiny_world")
    report = build_tiny_world(out, seed=0, size="small", progress=False)
    return out, report


@pytest.fixture
def image():
    from PIL import Image

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))


def tone(seconds: float, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    """A sine tone with a little noise: [seconds * rate] float32."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(1)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
