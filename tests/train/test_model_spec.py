"""`model:` of a stage config: every key is honoured. Here `codec`, which replaces the checkpoint's codec."""

from __future__ import annotations

import pytest
import torch

from nexus_o.bundle.omni import OmniModel
from nexus_o.bundle.loading import build_preset
from nexus_o.codecs.builtin import fit_builtin_codec
from nexus_o.train.config import ModelSpec
from nexus_o.train.run import load_training_model
from tests.conftest import tone
from tests.train.conftest import TINY_DECODER


def _codec_folder(tmp_path, name: str, size: int):
    codec = fit_builtin_codec([tone(2.0, 22050)], 4, size, iters=2, sample_rate=22050, progress=False)
    codec.save_pretrained(tmp_path / name)
    return codec, str(tmp_path / name)


def test_model_codec_replaces_the_checkpoints_codec(tmp_path):
    codec, folder = _codec_folder(tmp_path, "codec", 64)
    omni = load_training_model(ModelSpec(preset="tiny", speech_decoder=TINY_DECODER, codec=folder))
    assert omni.can_speak and omni.codec.codebook_size == 64
    assert torch.equal(omni.codec.encode(torch.from_numpy(tone(0.5, 22050))[None, None], sample_rate=22050),
                       codec.encode(torch.from_numpy(tone(0.5, 22050))[None, None], sample_rate=22050))

    _, other = _codec_folder(tmp_path, "other", 32)  # replaces a checkpoint's own codec too
    checkpoint = tmp_path / "ckpt"
    OmniModel(*build_preset("tiny"), codec).save_pretrained(checkpoint)
    assert load_training_model(ModelSpec(path=str(checkpoint))).codec.codebook_size == 64
    assert load_training_model(ModelSpec(path=str(checkpoint), codec=other)).codec.codebook_size == 32


def test_model_codec_is_checked_against_the_speech_decoder(tmp_path):
    _, folder = _codec_folder(tmp_path, "small", 32)  # the decoder expects 64 entries per codebook
    with pytest.raises(ValueError, match="codec_entries=64"):
        load_training_model(ModelSpec(preset="tiny", speech_decoder=TINY_DECODER, codec=folder))
