"""The reference way: each metric on its own, from raw features, with the reference's algorithms.

This mirrors how the platonic-rep code is used: one metric per call, each call preprocessing the
features and computing its own kernels and neighbour lists, with the plain algorithms of the
reference (full argsort, dense N x N masks, HSIC through N x N centring-matrix products, a
Python dynamic programme per neighbour list). It is slow on purpose and exists to check the
shared fast path (:mod:`.score`) and to measure what sharing saves (``benchmarks/alignment_metrics.py``).
Only SVCCA's final step differs from the reference, which calls scikit-learn's iterative CCA:
here the canonical correlations come from whitened cross-covariances (see :mod:`.svcca`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from nexus_o.eval.alignment.features import prepare_features
from nexus_o.eval.alignment.inputs import as_features, check_paired, check_sizes
from nexus_o.eval.alignment.metrics import DENOM_EPS
from nexus_o.eval.alignment.options import METRIC_NAMES, MetricOptions
from nexus_o.eval.alignment.svcca import top_singular_basis


def knn_by_sort(feats: Tensor, topk: int) -> Tensor:
    """[N, D] -> [N, topk]: rows of the kernel sorted, diagonal pushed down to -1e8 first."""
    kernel = (feats @ feats.T).fill_diagonal_(-1e8)
    return kernel.argsort(dim=1, descending=True)[:, :topk]


def _lcs_length(x: Sequence[int], y: Sequence[int]) -> int:
    table = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i, xi in enumerate(x, start=1):
        for j, yj in enumerate(y, start=1):
            table[i][j] = table[i - 1][j - 1] + 1 if xi == yj else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def _levenshtein(x: Sequence[int], y: Sequence[int]) -> int:
    prev = list(range(len(y) + 1))
    for i, xi in enumerate(x, start=1):
        row = [i]
        for j, yj in enumerate(y, start=1):
            row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (xi != yj)))
        prev = row
    return prev[-1]


def hsic_biased_dense(x: Tensor, y: Tensor) -> Tensor:
    """``tr(X H Y H)`` with the explicit centring matrix H = I - 11^T / N."""
    n = x.shape[0]
    h = torch.eye(n, dtype=x.dtype, device=x.device) - 1.0 / n
    return torch.trace(x @ h @ y @ h)


def hsic_unbiased_dense(x: Tensor, y: Tensor) -> Tensor:
    """Song et al. (2012) eq. 5 on dense matrices, with a full N x N product."""
    n = x.shape[0]
    xt = x.clone().fill_diagonal_(0)
    yt = y.clone().fill_diagonal_(0)
    value = (xt * yt.T).sum() + xt.sum() * yt.sum() / ((n - 1) * (n - 2)) - 2 * (xt @ yt).sum() / (n - 2)
    return value / (n * (n - 3))


def mutual_knn_ref(a: Tensor, b: Tensor, topk: int) -> float:
    knn_a, knn_b = knn_by_sort(a, topk), knn_by_sort(b, topk)
    n = a.shape[0]
    rows = torch.arange(n, device=a.device)[:, None]
    mask_a = torch.zeros(n, n, device=a.device)
    mask_b = torch.zeros(n, n, device=a.device)
    mask_a[rows, knn_a] = 1.0
    mask_b[rows, knn_b] = 1.0
    return float(((mask_a * mask_b).sum(dim=1) / topk).mean())


def cycle_knn_ref(a: Tensor, b: Tensor, topk: int) -> float:
    knn_a, knn_b = knn_by_sort(a, topk), knn_by_sort(b, topk)
    n = a.shape[0]
    hit = knn_a[knn_b] == torch.arange(n, device=a.device).view(-1, 1, 1)
    return float(hit.view(n, -1).any(dim=1).double().mean())


def lcs_knn_ref(a: Tensor, b: Tensor, topk: int) -> float:
    lists_a, lists_b = knn_by_sort(a, topk).tolist(), knn_by_sort(b, topk).tolist()
    return float(np.mean([_lcs_length(x, y) for x, y in zip(lists_a, lists_b, strict=True)]))


def edit_distance_knn_ref(a: Tensor, b: Tensor, topk: int) -> float:
    lists_a, lists_b = knn_by_sort(a, topk).tolist(), knn_by_sort(b, topk).tolist()
    return 1.0 - float(np.mean([_levenshtein(x, y) for x, y in zip(lists_a, lists_b, strict=True)])) / topk


def cka_ref(a: Tensor, b: Tensor, kernel: str = "linear", sigma: float = 1.0, unbiased: bool = False) -> float:
    if kernel == "linear":
        ka, kb = a @ a.T, b @ b.T
    else:
        ka = torch.exp(-(torch.cdist(a, a) ** 2) / (2 * sigma**2))
        kb = torch.exp(-(torch.cdist(b, b) ** 2) / (2 * sigma**2))
    fn = hsic_unbiased_dense if unbiased else hsic_biased_dense
    return float(fn(ka, kb) / (torch.sqrt(fn(ka, ka) * fn(kb, kb)) + DENOM_EPS))


def cknna_ref(a: Tensor, b: Tensor, topk: int) -> float:
    ka, kb = a @ a.T, b @ b.T

    def similarity(x: Tensor, y: Tensor) -> Tensor:
        top_x = x.clone().fill_diagonal_(float("-inf")).topk(topk, dim=1).indices
        top_y = y.clone().fill_diagonal_(float("-inf")).topk(topk, dim=1).indices
        mask_x = torch.zeros_like(x).scatter_(1, top_x, 1.0)
        mask = mask_x * torch.zeros_like(y).scatter_(1, top_y, 1.0)
        return hsic_unbiased_dense(mask * x, mask * y)

    return float(similarity(ka, kb) / (torch.sqrt(similarity(ka, ka) * similarity(kb, kb)) + DENOM_EPS))


def svcca_ref(a: Tensor, b: Tensor, cca_dim: int = 10, seed: int = 0) -> float:
    u_a = top_singular_basis(a, cca_dim, seed)
    u_b = top_singular_basis(b, cca_dim, seed)
    u_a = u_a - u_a.mean(dim=0)
    u_b = u_b - u_b.mean(dim=0)

    def inv_sqrt(cov: Tensor) -> Tensor:
        vals, vecs = torch.linalg.eigh(cov)
        return vecs @ torch.diag(vals.rsqrt()) @ vecs.T

    whitened = inv_sqrt(u_a.T @ u_a) @ (u_a.T @ u_b) @ inv_sqrt(u_b.T @ u_b)
    return float(torch.linalg.svdvals(whitened).clamp(max=1.0).mean())


def _metric_fns(topk: int, options: MetricOptions) -> dict[str, Callable[[Tensor, Tensor], float]]:
    return {
        "cycle_knn": lambda a, b: cycle_knn_ref(a, b, topk),
        "mutual_knn": lambda a, b: mutual_knn_ref(a, b, topk),
        "lcs_knn": lambda a, b: lcs_knn_ref(a, b, topk),
        "cka": lambda a, b: cka_ref(a, b, options.cka_kernel, options.rbf_sigma, options.cka_unbiased),
        "cknna": lambda a, b: cknna_ref(a, b, topk),
        "svcca": lambda a, b: svcca_ref(a, b, options.cca_dim, options.seed),
        "edit_distance_knn": lambda a, b: edit_distance_knn_ref(a, b, topk),
    }


@torch.no_grad()
def reference_metric(
    name: str, feats_a: Tensor, feats_b: Tensor, topk: int = 10, options: MetricOptions | None = None
) -> float:
    """One metric computed on its own from raw [N, D] features, the reference way.

    Args:
        name: one of :data:`METRIC_NAMES`.
        feats_a, feats_b: [N, D_a], [N, D_b] raw (unprepared) paired features.
        topk: neighbours per sample.
        options: as for :func:`~nexus_o.eval.alignment.score.score_all`.

    Returns:
        The metric's value.
    """
    options = options or MetricOptions()
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(METRIC_NAMES)}")
    a, b = check_paired(as_features(feats_a, "feats_a"), as_features(feats_b, "feats_b"), "feats_a", "feats_b")
    check_sizes(a.shape[0], topk, options.cca_dim, a.shape[1], b.shape[1])
    a = prepare_features(a, options.clip_quantile, options.l2_normalize)
    b = prepare_features(b, options.clip_quantile, options.l2_normalize)
    return _metric_fns(topk, options)[name](a, b)


def reference_scores(
    feats_a: Tensor, feats_b: Tensor, topk: int = 10, options: MetricOptions | None = None
) -> dict[str, float]:
    """All seven metrics, each computed on its own from scratch (see :func:`reference_metric`)."""
    return {name: reference_metric(name, feats_a, feats_b, topk, options) for name in METRIC_NAMES}
