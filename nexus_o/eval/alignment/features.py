"""Feature preprocessing shared by every metric: outlier clipping, then per-sample L2 norm.

The reference (platonic-rep ``measure_alignment.py``) clips a feature tensor at the exact 0.95
quantile of its absolute values and L2-normalises each sample before computing any metric.
One difference is deliberate: the reference clips a model's whole ``[N, L, D]`` stack of layers
with one threshold, while here each ``[N, D]`` matrix (each layer) gets its own threshold, so a
layer's score does not depend on which other layers were extracted with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def exact_quantile(values: Tensor, q: float) -> Tensor:
    """The reference's "exact" quantile of each row: its element at ``int(q * M)`` in ascending order.

    This is an order statistic, not the interpolated ``torch.quantile``: it matches
    ``values.sort().values[int(q * M)]`` exactly, found by selection instead of a full sort.

    Args:
        values: [..., M] numbers.
        q: quantile in (0, 1).

    Returns:
        [...] one threshold per row.
    """
    index = int(q * values.shape[-1])
    return values.kthvalue(index + 1, dim=-1).values


def clip_outliers(feats: Tensor, quantile: float | None = 0.95) -> Tensor:
    """Clamp each feature matrix to [-t, t], t its exact ``quantile`` of absolute values.

    Args:
        feats: [..., N, D] features; every [N, D] matrix gets its own threshold.
        quantile: in (0, 1]; ``None`` or 1.0 returns ``feats`` unchanged (as the reference does
            for q == 1).

    Returns:
        [..., N, D] clipped features.
    """
    if quantile is None or quantile >= 1.0:
        return feats
    threshold = exact_quantile(feats.abs().flatten(-2), quantile)[..., None, None]
    return torch.minimum(torch.maximum(feats, -threshold), threshold)


def prepare_features(feats: Tensor, clip_quantile: float | None = 0.95, l2_normalize: bool = True) -> Tensor:
    """Clip outliers then L2-normalise each sample, the preprocessing before every metric.

    Args:
        feats: [..., N, D] features.
        clip_quantile: see :func:`clip_outliers`.
        l2_normalize: divide each sample (row) by its L2 norm (``F.normalize``, eps 1e-12).

    Returns:
        [..., N, D] prepared features, same dtype and device.
    """
    feats = clip_outliers(feats, clip_quantile)
    if l2_normalize:
        feats = F.normalize(feats, p=2, dim=-1)
    return feats
