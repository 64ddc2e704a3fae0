"""FireFly (fish-speech 1.4) with random weights: key layout, shapes, code range, loading, streaming."""

import pytest
import torch

from nexus_o.codecs.firefly import (
    CheckpointMismatchError,
    FireflyCodec,
    FireflyConfig,
    FireflyGAN,
    decoder_left_context,
)
from nexus_o.codecs.firefly_modules import FSQ
from tests.codecs.conftest import TINY_FIREFLY, as_wav, speechlike

# Keys and shapes of the public firefly-gan-vq-fsq-8x1024-21hz-generator.pth (fish-speech 1.4).
CHECKPOINT_SHAPES = {
    "backbone.downsample_layers.0.0.conv.weight": (128, 160, 7),
    "backbone.downsample_layers.1.1.weight": (256, 128, 1),
    "backbone.stages.2.8.dwconv.conv.weight": (384, 1, 7),
    "backbone.stages.3.2.pwconv1.weight": (2048, 512),
    "backbone.norm.weight": (512,),
    "head.conv_pre.conv.parametrizations.weight.original0": (512, 1, 1),
    "head.conv_pre.conv.parametrizations.weight.original1": (512, 512, 13),
    "head.ups.0.conv.parametrizations.weight.original1": (512, 256, 16),
    "head.ups.4.conv.parametrizations.weight.original1": (32, 16, 4),
    "head.resblocks.4.blocks.2.convs2.2.conv.parametrizations.weight.original1": (16, 16, 11),
    "head.conv_post.conv.parametrizations.weight.original1": (1, 16, 13),
    "quantizer.residual_fsq.rvqs.7.project_in.weight": (4, 64),
    "quantizer.residual_fsq.rvqs.7.project_out.weight": (64, 4),
    "quantizer.downsample.1.0.conv.weight": (512, 512, 2),
    "quantizer.downsample.1.1.gamma": (512,),
    "quantizer.upsample.0.0.conv.weight": (512, 512, 2),
    "quantizer.upsample.1.1.pwconv2.weight": (512, 2048),
}


def test_full_size_model_has_the_checkpoint_layout_and_rates():
    codec = FireflyCodec.random_init(seed=0)
    state = codec.model.state_dict()
    for key, shape in CHECKPOINT_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert {k.split(".")[0] for k in state} == {"backbone", "head", "quantizer"}
    assert (codec.sample_rate, codec.num_codebooks, codec.codebook_size) == (44100, 8, 1000)
    assert codec.frame_rate == pytest.approx(44100 / 512 / 4)
    assert codec.left_context == decoder_left_context(FireflyConfig()) == 17 and codec.right_context == 0
    codes = codec.encode(as_wav(speechlike(0.4, rate=44100)))
    assert codes.shape == (1, 8, 9)  # 0.4 s -> 34 mel frames -> ceil(34 / 4) code frames
    assert 0 <= int(codes.min()) and int(codes.max()) < 1000
    assert codec.decode(codes).shape == (1, 1, 9 * 2048)


def test_tiny_encode_decode_shapes_and_resampling(tiny_firefly):
    wav = torch.cat([as_wav(speechlike(0.5, rate=22050, seed=s)) for s in (0, 1)])
    codes = tiny_firefly.encode(wav, sample_rate=22050)  # resampled to 44.1 kHz: 43 mel frames
    assert codes.shape == (2, 2, 11) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 1000
    audio = tiny_firefly.decode(codes)
    assert audio.shape == (2, 1, 11 * 2048) and audio.abs().max() <= 1.0


def test_fsq_ids_cover_exactly_1000_entries_and_invert():
    fsq = FSQ((8, 5, 5, 5))
    codes = fsq.to_codes(torch.arange(1000))
    assert codes[:, 0].unique().tolist() == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75]  # 8 levels
    assert codes[:, 1].unique().tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]  # 5 levels
    assert len({tuple(row) for row in codes.tolist()}) == 1000
    # Decoding an id gives back exactly the rounded, bounded input that produced it.
    z = torch.randn(500, 4, generator=torch.Generator().manual_seed(0)) * 3
    half = torch.tensor([4.0, 2.0, 2.0, 2.0])
    assert torch.equal(fsq.to_codes(fsq.to_ids(z)) * half, torch.round(fsq.bound(z)))
    extreme = fsq.to_ids(torch.tensor([[50.0, 50.0, 50.0, 50.0], [-50.0, -50.0, -50.0, -50.0]]))
    assert extreme.tolist() == [999, 0]


@pytest.mark.parametrize("wrap", ["plain", "lightning"])
def test_checkpoint_file_round_trip(tiny_firefly, tmp_path, wrap):
    state = tiny_firefly.model.state_dict()
    if wrap == "lightning":  # what training checkpoints look like: generator.* inside state_dict
        state = {"state_dict": {**{f"generator.{k}": v for k, v in state.items()}, "discriminator.w": torch.ones(1)}}
    path = tmp_path / "generator.pth"
    torch.save(state, path)
    loaded = FireflyCodec.from_checkpoint(path, TINY_FIREFLY)
    wav = as_wav(speechlike(0.3, rate=44100, seed=2))
    codes = tiny_firefly.encode(wav)
    assert torch.equal(loaded.encode(wav), codes)
    torch.testing.assert_close(loaded.decode(codes), tiny_firefly.decode(codes), atol=1e-6, rtol=0)


def test_save_pretrained_round_trip(tiny_firefly, tmp_path):
    tiny_firefly.save_pretrained(tmp_path / "ff")
    loaded = FireflyCodec.from_pretrained(tmp_path / "ff")
    assert loaded.config == TINY_FIREFLY
    codes = torch.randint(0, 1000, (1, 2, 4))
    torch.testing.assert_close(loaded.decode(codes), tiny_firefly.decode(codes), atol=1e-6, rtol=0)


def test_mismatched_checkpoint_lists_missing_unexpected_and_shapes(tmp_path):
    state = FireflyGAN(TINY_FIREFLY).state_dict()
    state.pop("head.conv_pre.conv.bias")
    state["head.noise_convs.0.weight"] = torch.zeros(1)
    state["backbone.norm.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatchError) as caught:
        FireflyCodec.from_checkpoint(tmp_path / "bad.pth", TINY_FIREFLY)
    message = str(caught.value)
    assert "missing keys (1):\n  head.conv_pre.conv.bias" in message
    assert "unexpected keys (1):\n  head.noise_convs.0.weight" in message
    assert "backbone.norm.weight: checkpoint (3,) vs model (16,)" in message
    with pytest.raises(FileNotFoundError):
        FireflyCodec.from_checkpoint(tmp_path / "missing.pth")


def test_decoder_is_causal_within_its_left_context(tiny_firefly):
    codes = torch.randint(0, 1000, (1, 2, 30), generator=torch.Generator().manual_seed(0))
    moved = codes.clone()
    moved[..., 10] = (moved[..., 10] + 500) % 1000
    diff = (tiny_firefly.decode(codes) - tiny_firefly.decode(moved)).abs()[0, 0]
    spf, context = tiny_firefly.samples_per_frame, tiny_firefly.left_context
    assert diff[: 10 * spf].max() == 0  # nothing before the changed frame
    assert diff[(11 + context) * spf :].max() == 0  # nothing beyond its left-context reach
    assert diff[10 * spf : 11 * spf].max() > 0


def test_streaming_decode_equals_one_shot(tiny_firefly):
    codes = torch.randint(0, 1000, (1, 2, 26), generator=torch.Generator().manual_seed(1))
    whole = tiny_firefly.decode(codes)
    pieces, state = [], None
    for start, stop in [(0, 3), (3, 4), (4, 15), (15, 26)]:
        wav, state = tiny_firefly.decode_incremental(codes[..., start:stop], state, last=stop == 26)
        assert wav.shape[-1] == (stop - start) * 2048  # causal: no latency
        pieces.append(wav)
    torch.testing.assert_close(torch.cat(pieces, dim=-1), whole, atol=1e-5, rtol=0)
