"""The vision tower's attention in one call per layer equals transformers' per-window loop."""

import pytest
import torch

from nexus_o.bundle.loading import build_preset
from nexus_o.models.vision_attention import SingleCallVisionAttention

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def image_features(model, pixels, grid):
    return torch.cat(model.vl.model.get_image_features(pixels, grid, return_dict=True).pooler_output)


def test_single_call_equals_the_window_loop_with_the_same_weights():
    model, _ = build_preset("tiny")
    visual = model.vl.model.visual
    assert all(isinstance(block.attn, SingleCallVisionAttention) for block in visual.blocks)
    config = model.config.vl_config.vision_config
    dim = config.in_channels * config.temporal_patch_size * config.patch_size ** 2
    grid = torch.tensor([[1, 8, 12], [1, 4, 4]])  # two images: several windows each, full layers per image
    pixels = torch.randn(int(grid.prod(dim=1).sum()), dim)
    with torch.no_grad():
        single = image_features(model, pixels, grid)
        for block in visual.blocks:
            block.attn = block.attn._fallback[0]  # transformers' own module, same weights
        loop = image_features(model, pixels, grid)
    torch.testing.assert_close(single, loop, atol=1e-5, rtol=1e-4)


def test_weights_keep_their_names_and_gradients_flow():
    model, _ = build_preset("tiny")
    names = [n for n, _ in model.named_parameters() if ".visual.blocks.0.attn." in n]
    assert sorted(n.rsplit("attn.", 1)[1] for n in names) == ["proj.bias", "proj.weight", "qkv.bias", "qkv.weight"]
    config = model.config.vl_config.vision_config
    dim = config.in_channels * config.temporal_patch_size * config.patch_size ** 2
    grid = torch.tensor([[1, 8, 8]])
    image_features(model, torch.randn(64, dim), grid).sum().backward()
    assert model.vl.model.visual.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
