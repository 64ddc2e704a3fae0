"""The alignment metrics, computed from shared kernels and neighbour lists.

Definitions follow the Platonic Representation Hypothesis reference code (platonic-rep,
``metrics.py``), quirks included; each function's docstring states its quirks. All functions
take tensors with any leading batch dimensions (``...``, e.g. layers) and return one value per
batch entry. None of them does O(N^3) work: HSIC comes from kernel sums in O(N^2), and every
neighbour-list metric (cknna included) runs in O(N k^2) on the lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nexus_o.eval.alignment.knn import gather_rows

# Added to the CKA / CKNNA denominator after the square root, as the reference does.
DENOM_EPS = 1e-6


def mutual_knn(match: Tensor) -> Tensor:
    """Mean share of a sample's k neighbours that are its neighbours in both spaces.

    ``mean_i |knn_A(i) & knn_B(i)| / k``. Symmetric in A and B.

    Args:
        match: [..., N, k, k] from :func:`~nexus_o.eval.alignment.knn.neighbour_match`.

    Returns:
        [...] float64 scores in [0, 1].
    """
    return match.any(dim=-1).to(torch.float64).mean(dim=(-2, -1))


def cycle_knn(knn_a: Tensor, knn_b: Tensor) -> Tensor:
    """Share of samples i for which some B-neighbour j of i has i among its A-neighbours.

    Quirk of the reference (``compute_knn_accuracy(knn_A[knn_B])``): the cycle goes out through
    B's lists and back through A's, so the metric is *not* symmetric; swapping A and B scores a
    different cycle.

    Args:
        knn_a: [..., N, k] neighbour lists in space A.
        knn_b: [..., N, k] neighbour lists in space B.

    Returns:
        [...] float64 scores in [0, 1].
    """
    n = knn_a.shape[-2]
    back = gather_rows(knn_a, knn_b)  # [..., N, k, k]: A-lists of i's B-neighbours
    me = torch.arange(n, device=knn_a.device)[:, None, None]
    return (back == me).flatten(-2).any(dim=-1).to(torch.float64).mean(dim=-1)


def lcs_knn(match: Tensor) -> Tensor:
    """Mean length of the longest common subsequence of the two *ordered* neighbour lists.

    Quirk of the reference: the length is not divided by k, so scores range over [0, k] and
    the paper's Table 7 shows values above 1. Symmetric in A and B.

    The dynamic programme runs on all N lists at once, one list position of A per step: in
    row i, ``dp[j] = max over j' <= j of max(prev[j'], prev[j' - 1] + match[i, j'])``, a cummax.

    Args:
        match: [..., N, k, k] from :func:`~nexus_o.eval.alignment.knn.neighbour_match`.

    Returns:
        [...] float64 mean LCS length.
    """
    *lead, k_a, k_b = match.shape
    prev = match.new_zeros((*lead, k_b + 1), dtype=torch.int64)
    for i in range(k_a):
        cand = torch.maximum(prev[..., 1:], prev[..., :-1] + match[..., i, :])
        prev = torch.cat([prev[..., :1], cand.cummax(dim=-1).values], dim=-1)
    return prev[..., -1].to(torch.float64).mean(dim=-1)


def edit_distance_knn(match: Tensor) -> Tensor:
    """One minus the mean Levenshtein distance between the ordered neighbour lists, over k.

    ``1 - mean_i lev(knn_A(i), knn_B(i)) / k`` with unit insert / delete / substitute costs
    (the reference calls ``torchaudio.functional.edit_distance``). Symmetric in A and B. Two
    unrelated lists are at distance k, so chance level is about 0, as in the paper's Table 7.

    Row i of the programme: ``c[j] = min(prev[j] + 1, prev[j - 1] + (a_i != b_j))``,
    ``c[0] = i``, then ``dp[j] = min over j' <= j of c[j'] + (j - j')``, a cummin.

    Args:
        match: [..., N, k, k] from :func:`~nexus_o.eval.alignment.knn.neighbour_match`.

    Returns:
        [...] float64 scores, at most 1.
    """
    *lead, k_a, k_b = match.shape
    steps = torch.arange(k_b + 1, device=match.device)
    prev = steps.expand(*lead, k_b + 1)
    for i in range(1, k_a + 1):
        sub = prev[..., :-1] + (~match[..., i - 1, :]).to(torch.int64)
        cand = torch.minimum(prev[..., 1:] + 1, sub)
        c = torch.cat([torch.full_like(prev[..., :1], i), cand], dim=-1)
        prev = (c - steps).cummin(dim=-1).values + steps
    return 1.0 - prev[..., -1].to(torch.float64).mean(dim=-1) / k_a


@dataclass(frozen=True)
class KernelSums:
    """Diagonal, row sums and total of a symmetric kernel, in float64; with tr(KL) they give HSIC.

    float64 because centring subtracts large, nearly equal sums: when features share a common
    offset (typical of LLM hidden states) every kernel entry is about the same and float32 sums
    would lose several digits of the centred HSIC.
    """

    diag: Tensor  # [..., N]
    rows: Tensor  # [..., N], equal to the column sums for a symmetric kernel
    total: Tensor  # [...]

    @classmethod
    def of(cls, kernel: Tensor) -> KernelSums:
        """Sums of a [..., N, N] symmetric kernel."""
        rows = kernel.sum(dim=-1, dtype=torch.float64)
        return cls(kernel.diagonal(dim1=-2, dim2=-1).to(torch.float64), rows, rows.sum(dim=-1))


def kernel_inner(kernel_k: Tensor, kernel_l: Tensor) -> Tensor:
    """``tr(K L) = sum(K * L)`` for symmetric [..., N, N] kernels, accumulated in float64."""
    return (kernel_k * kernel_l).sum(dim=(-2, -1), dtype=torch.float64)


def hsic(trace_kl: Tensor, sums_k: KernelSums, sums_l: KernelSums, n: int, unbiased: bool) -> Tensor:
    """HSIC of two symmetric N x N kernels from ``tr(K L)`` and their sums, in O(N).

    Biased: ``tr(K H L H)``, H = I - 11^T / N (the original CKA), expanded as
    ``tr(KL) - 2/N (K1).(L1) + (1^T K 1)(1^T L 1) / N^2``.
    Unbiased (Song et al. 2012, eq. 5; the reference's ``hsic_unbiased``): with K~, L~ the
    kernels with zeroed diagonals, ``[tr(K~L~) + 1^T K~ 1 1^T L~ 1 / ((N-1)(N-2))
    - 2/(N-2) 1^T K~ L~ 1] / (N (N-3))``; zeroing the diagonal is done on the sums.

    Args:
        trace_kl: [...] ``tr(K L)`` from :func:`kernel_inner`.
        sums_k, sums_l: :class:`KernelSums` of the two kernels.
        n: number of samples N (>= 4 when unbiased).
        unbiased: which estimator.

    Returns:
        [...] HSIC values.
    """
    k, m = sums_k, sums_l
    if not unbiased:
        cross = (k.rows * m.rows).sum(dim=-1)
        return trace_kl - 2.0 * cross / n + k.total * m.total / n**2
    trace = trace_kl - (k.diag * m.diag).sum(dim=-1)
    sum_k = k.total - k.diag.sum(dim=-1)
    sum_l = m.total - m.diag.sum(dim=-1)
    cross = ((k.rows - k.diag) * (m.rows - m.diag)).sum(dim=-1)
    value = trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)
    return value / (n * (n - 3))


def normalised_alignment(hsic_kl: Tensor, hsic_kk: Tensor, hsic_ll: Tensor) -> Tensor:
    """``hsic_kl / (sqrt(hsic_kk * hsic_ll) + 1e-6)``, the reference's CKA and CKNNA ratio.

    Quirk of the reference: the epsilon is added after the square root, so identical inputs
    score slightly below 1; and an unbiased ``hsic_kk`` can be negative on small or degenerate
    samples, which makes the square root (and the score) NaN, as in the reference.
    """
    return hsic_kl / (torch.sqrt(hsic_kk * hsic_ll) + DENOM_EPS)


def _masked_hsic_unbiased(idx: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Unbiased HSIC of two sparse N x N matrices that share one support, in O(N k^2).

    X and Y are nonzero only at (i, idx[i, r]) where their values are x[i, r] and y[i, r]
    (0 where the reference's mask removes the pair). The support never holds the diagonal
    (neighbour lists exclude self), so X~ = X. X is not symmetric, so the formula's terms are
    taken in their general form: ``tr(XY) = sum_ij X_ij Y_ji`` and ``1^T X Y 1 = (X^T 1).(Y 1)``.

    Args:
        idx: [..., N, k] column index of each stored entry (distinct within a row).
        x, y: [..., N, k] values of X and Y at those entries.

    Returns:
        [...] the reference's ``hsic_unbiased(X, Y)``.
    """
    n = idx.shape[-2]
    me = torch.arange(n, device=idx.device)[:, None, None]
    # Y_ji for j = idx[i, r]: the entry of row j whose column is i, if row j stores one.
    is_back = gather_rows(idx, idx) == me  # [..., N, k, k]
    y_back = (gather_rows(y, idx) * is_back).sum(dim=-1)  # [..., N, k]
    trace = (x * y_back).sum(dim=(-2, -1))
    x_cols = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    x_cols = x_cols.scatter_add(-1, idx.flatten(-2), x.flatten(-2))
    cross = (x_cols * y.sum(dim=-1)).sum(dim=-1)
    sum_x, sum_y = x.sum(dim=(-2, -1)), y.sum(dim=(-2, -1))
    value = trace + sum_x * sum_y / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)
    return value / (n * (n - 3))


def cknna(kernel_a: Tensor, kernel_b: Tensor, knn_a: Tensor, knn_b: Tensor, match: Tensor) -> Tensor:
    """CKA restricted to mutual nearest neighbours (the reference's default, unbiased variant).

    The reference masks both linear kernels with ``mask = topk(K) * topk(L)`` (pairs (i, j)
    where j is among i's k neighbours in both spaces, diagonal excluded) and returns
    ``hsic_u(mask K, mask L) / (sqrt(hsic_u(mK K, mK K) hsic_u(mL L, mL L)) + 1e-6)``, where
    mK, mL are each space's own top-k masks. With k = N - 1 every mask is all pairs but the
    diagonal, which hsic_u ignores, so cknna then equals unbiased linear CKA exactly.
    The reference's ``distance_agnostic`` and biased options are not provided (the former
    returns a matrix where a number is expected).

    Quirk of the reference: cknna is *not* exactly symmetric in A and B. The neighbour mask is
    not a symmetric matrix (j among i's neighbours does not make i among j's), so the masked
    kernels are not symmetric either, and HSIC's cross term ``1^T X Y 1`` changes when X and Y
    swap. The difference is usually small (about 1e-4 on random data).

    Args:
        kernel_a, kernel_b: [..., N, N] linear kernels.
        knn_a, knn_b: [..., N, k] neighbour lists of the same kernels (self excluded).
        match: [..., N, k, k] ``neighbour_match(knn_a, knn_b)``.

    Returns:
        [...] scores.
    """
    # Only N k entries survive the masks, so float64 costs nothing here (see KernelSums on why).
    values_a = kernel_a.gather(-1, knn_a).to(torch.float64)
    values_b = kernel_b.gather(-1, knn_b).to(torch.float64)
    both = match.any(dim=-1).to(torch.float64)  # knn_a[i, r] is also a B-neighbour of i
    b_at_a = kernel_b.gather(-1, knn_a).to(torch.float64)
    hsic_ab = _masked_hsic_unbiased(knn_a, values_a * both, b_at_a * both)
    hsic_aa = _masked_hsic_unbiased(knn_a, values_a, values_a)
    hsic_bb = _masked_hsic_unbiased(knn_b, values_b, values_b)
    return normalised_alignment(hsic_ab, hsic_aa, hsic_bb)
