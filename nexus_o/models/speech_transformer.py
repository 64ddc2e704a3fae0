"""The causal transformer inside the speech decoder, with a fixed-shape per-layer KV cache.

Pre-norm blocks (RMSNorm), rotary positions (half-split layout), torch's
`scaled_dot_product_attention`, GELU MLP. Nothing speech-specific lives here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotary_angles(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """positions [B, L] -> (cos, sin), each [B, 1, L, head_dim / 2] (float32)."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = positions[..., None].float() * inv_freq
    return angles.cos()[:, None], angles.sin()[:, None]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [..., B, H, L, head_dim] by the angles of its positions."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).type_as(x)


class SlotCache:
    """Keys and values of one layer at a fixed shape: `capacity` sequence slots + one scratch slot.

    Every write goes to per-sample slots, and attention always runs over all capacity + 1 slots
    with a mask, so no tensor changes shape between generation steps (CUDA graphs can replay a
    step, and attention backends that plan per shape plan once). The last slot (`scratch`)
    takes the writes of samples that have nothing to write in a call; it is never a valid key.
    """

    def __init__(self, batch: int, heads: int, capacity: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device | str):
        self.keys = torch.zeros(batch, heads, capacity + 1, head_dim, dtype=dtype, device=device)
        self.values = torch.zeros_like(self.keys)
        self.scratch = capacity

    def write(self, keys: torch.Tensor, values: torch.Tensor, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store keys/values [B, H, q, head_dim] at slots [B, q]; return the whole cache [B, H, capacity + 1, head_dim]."""
        index = slots[:, None, :, None].expand(-1, keys.shape[1], -1, keys.shape[3])
        self.keys.scatter_(2, index, keys.to(self.keys.dtype))
        self.values.scatter_(2, index, values.to(self.values.dtype))
        return self.keys, self.values


class Block(nn.Module):
    """One pre-norm transformer layer."""

    def __init__(self, *, hidden_size: int, num_heads: int, intermediate_size: int,
                 dropout: float, rms_norm_eps: float):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.attn_norm = nn.RMSNorm(hidden_size, eps=rms_norm_eps)
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, hidden_size, bias=False)
        self.mlp_norm = nn.RMSNorm(hidden_size, eps=rms_norm_eps)
        self.fc_in = nn.Linear(hidden_size, intermediate_size)
        self.fc_out = nn.Linear(intermediate_size, hidden_size)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], attend: torch.Tensor,
                cache: SlotCache | None = None, slots: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, D]; attend [B, 1, L, L_keys] bool (true = may attend) -> [B, L, D].

        With a cache, x's keys/values are written at slots [B, L] and attention runs over the cache.
        """
        b, length, width = x.shape
        qkv = self.qkv(self.attn_norm(x)).view(b, length, 3, self.num_heads, width // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # [3, B, H, L, head_dim]
        (q, k), v = apply_rotary(qkv[:2], *rope), qkv[2]  # q and k rotated in one go
        if cache is not None:
            k, v = cache.write(k, v, slots)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=attend,
                                              dropout_p=self.dropout if self.training else 0.0)
        # Functional dropout/GELU: a generation step is dominated by per-call overhead, not FLOPs.
        x = x + F.dropout(self.out(attn.transpose(1, 2).reshape(b, length, width)), self.dropout, self.training)
        mlp = self.fc_out(F.gelu(self.fc_in(self.mlp_norm(x)), approximate="tanh"))
        return x + F.dropout(mlp, self.dropout, self.training)


class CausalTransformer(nn.Module):
    """A stack of `Block`s and a final norm; the caller supplies positions and the attention mask."""

    def __init__(self, *, num_layers: int, hidden_size: int, num_heads: int, intermediate_size: int,
                 dropout: float = 0.0, rope_theta: float = 10000.0, rms_norm_eps: float = 1e-6):
        super().__init__()
        if hidden_size % num_heads or (hidden_size // num_heads) % 2:
            raise ValueError(f"hidden_size={hidden_size} must split into num_heads={num_heads} heads of even width")
        self.hidden_size, self.num_heads, self.rope_theta = hidden_size, num_heads, rope_theta
        self.layers = nn.ModuleList(
            Block(hidden_size=hidden_size, num_heads=num_heads, intermediate_size=intermediate_size,
                  dropout=dropout, rms_norm_eps=rms_norm_eps) for _ in range(num_layers))
        self.norm = nn.RMSNorm(hidden_size, eps=rms_norm_eps)

    def new_cache(self, batch: int, capacity: int, dtype: torch.dtype, device: torch.device | str) -> list[SlotCache]:
        """One empty `SlotCache` per layer."""
        head_dim = self.hidden_size // self.num_heads
        return [SlotCache(batch, self.num_heads, capacity, head_dim, dtype, device) for _ in self.layers]

    def forward(self, x: torch.Tensor, positions: torch.Tensor, attend: torch.Tensor,
                cache: list[SlotCache] | None = None) -> torch.Tensor:
        """x [B, L, D], positions [B, L], attend [B, 1, L, L_keys] bool -> normed hidden [B, L, D].

        With a cache the positions are also the slots x is written to (a slot is its position).
        """
        rope = rotary_angles(positions, self.hidden_size // self.num_heads, self.rope_theta)
        for i, layer in enumerate(self.layers):
            x = layer(x, rope, attend, None if cache is None else cache[i], positions)
        return self.norm(x)
