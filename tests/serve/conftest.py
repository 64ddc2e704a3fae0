"""Serve fixtures: a tiny model that speaks, and one live server per test module."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch


def speaking_tiny():
    """An `OmniModel`: the tiny preset with a 1-layer speech decoder and a toy-width FireFly codec
    with random weights: they speak noise, fast. (`load_model("tiny")` speaks through the shipped
    built-in codec, whose vocoder is slower; test_tiny_speaks.py serves that one.)
    """
    from nexus_o.bundle.loading import build_preset, speech_decoder_for
    from nexus_o.bundle.omni import OmniModel
    from nexus_o.codecs.firefly import FireflyCodec, FireflyConfig

    model, processor = build_preset("tiny", seed=0)
    codec = FireflyCodec.random_init(FireflyConfig(
        backbone_depths=(1, 1), backbone_dims=(8, 16), upsample_initial_channel=32, resblock_kernel_sizes=(3, 5),
        resblock_dilation_sizes=((1, 2), (1, 3)), pre_conv_kernel_size=5, post_conv_kernel_size=5, n_groups=2),
        seed=0)
    model.add_speech_decoder(speech_decoder_for(codec, model.config.vl_config.text_config.hidden_size))
    return OmniModel(model.eval(), processor, codec)


@pytest.fixture(scope="session")
def speaking():
    """The speaking tiny `OmniModel`, shared by the serve test modules (one server at a time)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # built on one thread, like the tests that use it; the rest of the session keeps its own
    try:
        return speaking_tiny()
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _serve_on_one_thread(one_thread):
    """Every serving test on one thread (tests/conftest.py)."""


def png_data_url(width: int = 40, height: int = 30) -> str:
    from PIL import Image

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def wav_b64(seconds: float = 0.5, rate: int = 16000) -> str:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV")
    return base64.b64encode(buffer.getvalue()).decode()


def mp4_bytes(frames: int = 20, fps: int = 10, width: int = 64, height: int = 48) -> bytes:
    """A small MPEG-4 video of grey frames getting brighter."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), i * 10, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
