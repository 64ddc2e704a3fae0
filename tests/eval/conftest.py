"""Eval fixtures: the tiny preset with a speech decoder, shared by the runner and suite tests."""

from __future__ import annotations

import pytest

from tests.eval.fakes import TTS_DECODER, ToneCodec


@pytest.fixture(scope="session")
def speaking_tiny():
    """The tiny preset (an `OmniModel`) with a speech decoder and a codec that renders each frame as a tone."""
    from nexus_o.bundle.loading import build_preset
    from nexus_o.bundle.omni import OmniModel

    model, processor = build_preset("tiny", seed=0)
    model.add_speech_decoder(TTS_DECODER)
    return OmniModel(model.eval(), processor, ToneCodec())
