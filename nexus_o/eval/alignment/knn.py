"""Kernels and nearest-neighbour lists, computed once per feature set and shared by all metrics.

Every function works on any number of leading batch dimensions (``...``), so a stack of layers
``[L, N, D]`` goes through in one call.
"""

from __future__ import annotations

import torch
from torch import Tensor


def linear_kernel(feats: Tensor) -> Tensor:
    """Inner products of all sample pairs.

    Args:
        feats: [..., N, D] features.

    Returns:
        [..., N, N] kernel ``feats @ feats^T``.
    """
    return feats @ feats.mT


def rbf_kernel(linear: Tensor, sigma: float) -> Tensor:
    """Gaussian kernel ``exp(-|x_i - x_j|^2 / (2 sigma^2))`` from the linear kernel.

    Squared distances come from inner products, ``|x|^2 + |y|^2 - 2 <x, y>``, so the O(N^2 D)
    product is shared with the linear kernel; rounding can make them slightly negative, hence
    the clamp.

    Args:
        linear: [..., N, N] linear kernel of the features.
        sigma: bandwidth, positive.

    Returns:
        [..., N, N] RBF kernel.
    """
    sq_norm = linear.diagonal(dim1=-2, dim2=-1)
    sq_dist = (sq_norm[..., :, None] + sq_norm[..., None, :] - 2.0 * linear).clamp_min(0.0)
    return torch.exp(-sq_dist / (2.0 * sigma**2))


def nearest_neighbours(kernel: Tensor, topk: int) -> Tensor:
    """Each sample's ``topk`` most similar other samples, most similar first; self excluded.

    The reference overwrites the kernel's diagonal with -1e8 and sorts each row. Here the top
    ``topk + 1`` entries are taken and the sample itself is dropped (or, if it did not make it,
    the last one), which gives the same lists without copying or modifying the [N, N] kernel.
    Ties between equal similarities are broken arbitrarily, as the reference's unstable
    ``argsort`` also does.

    Args:
        kernel: [..., N, N] similarities (larger is closer); N must exceed ``topk``.
        topk: neighbours per sample.

    Returns:
        [..., N, topk] int64 neighbour indices.
    """
    n = kernel.shape[-1]
    idx = kernel.topk(min(topk + 1, n), dim=-1, sorted=True).indices
    is_self = idx == torch.arange(n, device=kernel.device)[:, None]
    # A stable sort on the self flag moves self (if present) to the end and keeps the order.
    order = torch.argsort(is_self.to(torch.uint8), dim=-1, stable=True)
    return idx.gather(-1, order)[..., :topk]


def gather_rows(table: Tensor, rows: Tensor) -> Tensor:
    """For each sample i and each entry j of ``rows[..., i, :]``, the row ``table[..., j, :]``.

    Args:
        table: [..., N, K] per-sample rows (e.g. neighbour lists).
        rows: [..., N, M] int64 sample indices.

    Returns:
        [..., N, M, K] gathered rows.
    """
    *batch, n, m = rows.shape
    k = table.shape[-1]
    flat = rows.reshape(*batch, n * m, 1).expand(*batch, n * m, k)
    return table.gather(-2, flat).reshape(*batch, n, m, k)


def neighbour_match(knn_a: Tensor, knn_b: Tensor) -> Tensor:
    """Which entries of the two neighbour lists of each sample are the same sample.

    Args:
        knn_a: [..., N, k] neighbour lists in space A.
        knn_b: [..., N, k] neighbour lists in space B (broadcastable to ``knn_a``).

    Returns:
        [..., N, k, k] bool, ``match[..., i, r, s] = knn_a[..., i, r] == knn_b[..., i, s]``.
        Each list holds distinct samples, so each (i, r) matches at most one s.
    """
    return knn_a[..., :, None] == knn_b[..., None, :]
