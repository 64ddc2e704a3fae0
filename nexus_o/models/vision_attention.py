"""Qwen2.5-VL's vision attention in one call per layer instead of one per window.

Without flash-attention's variable-length kernel, transformers' `Qwen2_5_VLVisionAttention` splits
the patches at `cu_seqlens` (a host sync per layer) and runs one attention call per window: for
one 448x448 image, 16 calls in each of the 28 windowed layers (32 layers in all), forward and
again backward. `SingleCallVisionAttention` keeps the same `qkv` and `proj` weights (the same
state-dict keys) and runs every window at once: attention over all patches with a block-diagonal
mask (patch i may see patch j iff they share a window, or an image in the full-attention layers).
The mask is built once per `cu_seqlens` tensor and reused by every layer that gets the same one.
The result equals the per-window loop (tests/models/test_vision_attention.py); it computes the
masked-out blocks too, which costs little at the sizes images have (1,024 patches for 448x448),
so above `max_patches` the per-window loop runs instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MAX_PATCHES = 8192  # above: dense masked attention would waste more than the loop's launches cost


def apply_rotary_vision(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [S, H, head_dim] rotated by cos/sin [S, head_dim] (rotate-half layout, in float32)."""
    cos, sin = cos[:, None].float(), sin[:, None].float()
    half = x.shape[-1] // 2
    x32 = x.float()
    rotated = torch.cat([-x32[..., half:], x32[..., :half]], dim=-1)
    return (x32 * cos + rotated * sin).to(x.dtype)


class SingleCallVisionAttention(nn.Module):
    """Drop-in for `Qwen2_5_VLVisionAttention` (see the module doc); wraps the original's layers."""

    def __init__(self, original: nn.Module, max_patches: int = MAX_PATCHES, shared_mask: list | None = None):
        super().__init__()
        self.qkv, self.proj = original.qkv, original.proj  # the same parameters, the same keys
        self.num_heads, self.scaling = original.num_heads, original.scaling
        self.max_patches = max_patches
        self._fallback = [original]  # a list: not a submodule (its weights are ours already)
        # [(cu_seqlens, mask)]: one slot shared by the tower's blocks, so a forward builds each mask once.
        self._mask_cache = shared_mask if shared_mask is not None else [None]

    def _mask(self, cu_seqlens: torch.Tensor, length: int) -> torch.Tensor:
        """[1, 1, S, S] bool: true where two patches share a segment of cu_seqlens [n + 1]."""
        cached = self._mask_cache[0]
        if cached is not None and cached[0] is cu_seqlens:
            return cached[1]
        position = torch.arange(length, device=cu_seqlens.device)
        segment = torch.bucketize(position, cu_seqlens[1:], right=True)  # [S]
        mask = (segment[:, None] == segment[None, :])[None, None]
        self._mask_cache[0] = (cu_seqlens, mask)
        return mask

    def forward(self, hidden_states: torch.Tensor, cu_seqlens: torch.Tensor,
                position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None, **kwargs) -> torch.Tensor:
        """hidden_states [S, D] (all patches of the batch), cu_seqlens [n + 1] -> [S, D]."""
        length = hidden_states.shape[0]
        if length > self.max_patches:
            return self._fallback[0](hidden_states, cu_seqlens=cu_seqlens, position_embeddings=position_embeddings,
                                     **kwargs)
        q, k, v = self.qkv(hidden_states).reshape(length, 3, self.num_heads, -1).unbind(1)  # each [S, H, hd]
        cos, sin = position_embeddings
        q, k = apply_rotary_vision(q, cos, sin), apply_rotary_vision(k, cos, sin)
        q, k, v = (t.transpose(0, 1)[None] for t in (q, k, v))  # [1, H, S, hd]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self._mask(cu_seqlens, length), scale=self.scaling)
        return self.proj(out[0].transpose(0, 1).reshape(length, -1))


def use_single_call_attention(visual: nn.Module) -> int:
    """Swap the attention of every block of a Qwen2.5-VL vision tower (`model.vl.model.visual`);
    returns how many were swapped. Flash-attention configs keep their own varlen kernel."""
    if "flash" in str(getattr(visual.config, "_attn_implementation", "")):
        return 0
    swapped, shared = 0, [None]
    for block in visual.blocks:
        if not isinstance(block.attn, SingleCallVisionAttention):
            block.attn = SingleCallVisionAttention(block.attn, shared_mask=shared)
            swapped += 1
    return swapped
