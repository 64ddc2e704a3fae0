"""Building blocks of the fish-speech 1.4 FireFly GAN, laid out so its checkpoint keys load as-is.

Our own implementation of the published architecture. Every convolution is causal (left padding
only), wrapped in a module whose inner layer is named ``conv``, which gives checkpoint keys such
as ``head.ups.0.conv.parametrizations.weight.original1``. HiFi-GAN convolutions use torch's
parametrized weight norm (``original0`` = magnitude, ``original1`` = direction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class CausalConv1d(nn.Module):
    """Conv1d padded ``dilation * (kernel - 1) - (stride - 1)`` on the left; the right is padded only
    to complete the last stride, so output frame ``t`` never sees input after ``(t + 1) * stride - 1``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, dilation: int = 1,
        groups: int = 1, normalized: bool = False,
    ) -> None:
        super().__init__()
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups)
        self.conv = weight_norm(conv) if normalized else conv
        self.stride = stride
        self.span = (kernel_size - 1) * dilation + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = self.span - self.stride
        frames = math.ceil((x.shape[-1] + left - self.span) / self.stride) + 1
        right = (frames - 1) * self.stride + self.span - (x.shape[-1] + left)
        return self.conv(F.pad(x, (left, right)))


class CausalConvTranspose1d(nn.Module):
    """ConvTranspose1d whose ``kernel - stride`` overhanging samples are cut on the right: ``T -> T * stride``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int, normalized: bool = False):
        super().__init__()
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        self.conv = weight_norm(conv) if normalized else conv
        self.trim = kernel_size - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y[..., : y.shape[-1] - self.trim] if self.trim else y


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over channels of ``[B, C, T]`` (eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.transpose(1, 2), self.weight.shape, self.weight, self.bias, self.eps).transpose(1, 2)


class ConvNeXtBlock(nn.Module):
    """Causal depthwise conv -> LayerNorm -> MLP (x4, GELU) -> layer scale ``gamma`` -> residual."""

    def __init__(self, dim: int, kernel_size: int = 7, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.dwconv = CausalConv1d(dim, dim, kernel_size, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, int(mlp_ratio * dim))
        self.pwconv2 = nn.Linear(int(mlp_ratio * dim), dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class ConvNeXtEncoder(nn.Module):
    """Mel ``[B, n_mels, T]`` -> features ``[B, dims[-1], T]``: stem, four ConvNeXt stages, final norm."""

    def __init__(self, input_channels: int, depths: Sequence[int], dims: Sequence[int], kernel_size: int = 7):
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(f"ConvNeXt depths {list(depths)} and dims {list(dims)} differ in length")
        stem = nn.Sequential(CausalConv1d(input_channels, dims[0], 7), ChannelsFirstLayerNorm(dims[0]))
        transitions = [
            nn.Sequential(ChannelsFirstLayerNorm(dims[i]), nn.Conv1d(dims[i], dims[i + 1], kernel_size=1))
            for i in range(len(dims) - 1)
        ]
        self.downsample_layers = nn.ModuleList([stem, *transitions])
        self.stages = nn.ModuleList(
            nn.Sequential(*[ConvNeXtBlock(dim, kernel_size) for _ in range(depth)]) for depth, dim in zip(depths, dims)
        )
        self.norm = ChannelsFirstLayerNorm(dims[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for transition, stage in zip(self.downsample_layers, self.stages):
            x = stage(transition(x))
        return self.norm(x)


class ResBlock(nn.Module):
    """Three (SiLU, dilated conv, SiLU, dilated conv) residual steps; both convs use the same dilation."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]) -> None:
        super().__init__()

        def convs() -> nn.ModuleList:
            return nn.ModuleList(
                CausalConv1d(channels, channels, kernel_size, dilation=d, normalized=True) for d in dilations
            )

        self.convs1, self.convs2 = convs(), convs()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for first, second in zip(self.convs1, self.convs2):
            x = x + second(F.silu(first(F.silu(x))))
        return x


class ParallelResBlocks(nn.Module):
    """Mean of several :class:`ResBlock` with different kernel sizes (multi-receptive-field fusion)."""

    def __init__(self, channels: int, kernel_sizes: Sequence[int], dilations: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(channels, k, d) for k, d in zip(kernel_sizes, dilations))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([block(x) for block in self.blocks]).mean(0)


class HiFiGANHead(nn.Module):
    """Features ``[B, num_mels, T]`` -> ``wav [B, 1, T * prod(upsample_rates)]`` in [-1, 1]."""

    def __init__(
        self, *, num_mels: int, upsample_initial_channel: int, upsample_rates: Sequence[int],
        upsample_kernel_sizes: Sequence[int], resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]], pre_conv_kernel_size: int, post_conv_kernel_size: int,
    ) -> None:
        super().__init__()
        width = upsample_initial_channel
        self.conv_pre = CausalConv1d(num_mels, width, pre_conv_kernel_size, normalized=True)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            in_ch, out_ch = width // 2**i, width // 2 ** (i + 1)
            self.ups.append(CausalConvTranspose1d(in_ch, out_ch, kernel, stride=rate, normalized=True))
            self.resblocks.append(ParallelResBlocks(out_ch, resblock_kernel_sizes, resblock_dilation_sizes))
        self.conv_post = CausalConv1d(width // 2 ** len(upsample_rates), 1, post_conv_kernel_size, normalized=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for up, blocks in zip(self.ups, self.resblocks):
            x = blocks(up(F.silu(x)))
        return torch.tanh(self.conv_post(F.silu(x)))


class FSQ:
    """Finite scalar quantisation over ``len(levels)`` dims; ids in ``[0, prod(levels))``."""

    def __init__(self, levels: Sequence[int]) -> None:
        # Explicit CPU: the model may be built under a meta-device context; these are constants.
        self.levels = torch.tensor(list(levels), dtype=torch.long, device="cpu")
        self.basis = torch.tensor([math.prod(levels[:i]) for i in range(len(levels))], device="cpu")
        self.size = math.prod(levels)

    def bound(self, z: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        """Squash each dim into ``(-(L-1)/2, (L-1)/2)`` (shifted by 1/2 for even L) so rounding hits L values."""
        levels = self.levels.to(z.device, z.dtype)
        half = (levels - 1) * (1 + eps) / 2
        offset = torch.where(self.levels.to(z.device) % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def to_ids(self, z: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` -> ids ``[...]``; bounds then rounds (the caller bounds once more, as 1.4 does)."""
        digits = torch.round(self.bound(z)).long() + (self.levels // 2).to(z.device)
        return (digits * self.basis.to(z.device)).sum(-1)

    def to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[...]`` -> normalised codes ``[..., D]`` in [-1, 1]."""
        half = (self.levels // 2).to(ids.device)
        digits = (ids[..., None] // self.basis.to(ids.device)) % self.levels.to(ids.device)
        return ((digits - half) / half).float()


class FSQGroup(nn.Module):
    """One group of the grouped FSQ: project ``dim -> len(levels)``, quantise, project back."""

    def __init__(self, dim: int, levels: Sequence[int]) -> None:
        super().__init__()
        self.project_in = nn.Linear(dim, len(levels))
        self.project_out = nn.Linear(len(levels), dim)


class GroupedFSQ(nn.Module):
    """Channels split into ``n_groups`` equal parts, each quantised to one FSQ id per frame.

    fish-speech 1.4 runs a residual FSQ with one stage per group, which squashes the projected
    input with ``bound`` once before the stage squashes (and rounds) it again; kept as is so ids
    match checkpoints trained that way.
    """

    def __init__(self, dim: int, n_groups: int, levels: Sequence[int]) -> None:
        super().__init__()
        if dim % n_groups:
            raise ValueError(f"FSQ input_dim {dim} is not divisible by n_groups {n_groups}")
        self.fsq = FSQ(levels)
        self.rvqs = nn.ModuleList(FSQGroup(dim // n_groups, levels) for _ in range(n_groups))

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, T, dim]`` -> ids ``[B, n_groups, T]``."""
        chunks = z.chunk(len(self.rvqs), dim=-1)
        ids = [self.fsq.to_ids(self.fsq.bound(g.project_in(c))) for g, c in zip(self.rvqs, chunks)]
        return torch.stack(ids, dim=1)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``[B, n_groups, T]`` -> ``[B, T, dim]``."""
        return torch.cat([g.project_out(self.fsq.to_codes(ids[:, i])) for i, g in enumerate(self.rvqs)], dim=-1)


class DownsampleFSQ(nn.Module):
    """Features ``[B, dim, T]`` -> ids ``[B, groups, ceil(T / prod(factors))]`` and back to ``[B, dim, T]``.

    Strided causal convs (each followed by a ConvNeXt block) shorten time; :class:`GroupedFSQ`
    quantises; decoding mirrors it with transposed convs.
    """

    def __init__(self, *, input_dim: int, n_groups: int, levels: Sequence[int], downsample_factor: Sequence[int]):
        super().__init__()
        self.residual_fsq = GroupedFSQ(input_dim, n_groups, levels)
        self.downsample = nn.Sequential(
            *[nn.Sequential(CausalConv1d(input_dim, input_dim, f, stride=f), ConvNeXtBlock(input_dim))
              for f in downsample_factor]
        )
        self.upsample = nn.Sequential(
            *[nn.Sequential(CausalConvTranspose1d(input_dim, input_dim, f, stride=f), ConvNeXtBlock(input_dim))
              for f in reversed(downsample_factor)]
        )

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        return self.residual_fsq.encode(self.downsample(features).transpose(1, 2))

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.residual_fsq.decode(ids).transpose(1, 2))
