"""All seven alignment metrics in one pass, for one pair of feature sets or a stack of layers.

Each feature set is prepared once (clip, normalise), its kernel, neighbour lists, kernel sums
and SVCCA basis are computed once, and every metric reads from those. A stack of layers is
scored in batched tensor operations; when the other side is a single [N, D] matrix, its share
of the work is done once for all layers. For checking, :mod:`.reference` computes each metric
on its own from scratch, the way the reference code does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from nexus_o.eval.alignment import metrics
from nexus_o.eval.alignment.features import prepare_features
from nexus_o.eval.alignment.inputs import as_features, check_paired, check_sizes
from nexus_o.eval.alignment.knn import linear_kernel, nearest_neighbours, neighbour_match, rbf_kernel
from nexus_o.eval.alignment.options import METRIC_NAMES, MetricOptions
from nexus_o.eval.alignment.svcca import mean_canonical_correlation, orthonormal_centred, top_singular_basis


@dataclass(frozen=True)
class _Side:
    """What the metrics need from one prepared feature set; every field has leading dims [...]."""

    kernel: Tensor  # [..., N, N] linear kernel
    knn: Tensor  # [..., N, k] neighbour lists, self excluded
    cka_kernel: Tensor  # [..., N, N] linear kernel or RBF kernel
    cka_sums: metrics.KernelSums
    cka_self: Tensor  # [...] HSIC of the CKA kernel with itself
    basis: Tensor  # [..., N, q] orthonormal centred SVCCA basis

    def expand(self, batch: int) -> _Side:
        """Views with a leading batch dim, so an [N, D] side pairs with a [batch, N, D] one."""

        def grow(t: Tensor) -> Tensor:
            return t.expand(batch, *t.shape)

        sums = metrics.KernelSums(grow(self.cka_sums.diag), grow(self.cka_sums.rows), grow(self.cka_sums.total))
        return _Side(
            grow(self.kernel), grow(self.knn), grow(self.cka_kernel), sums, grow(self.cka_self), grow(self.basis)
        )


def _build_side(feats: Tensor, topk: int, options: MetricOptions) -> _Side:
    """Prepare raw features [..., N, D] and compute everything the metrics share."""
    feats = prepare_features(feats, options.clip_quantile, options.l2_normalize)
    kernel = linear_kernel(feats)
    knn = nearest_neighbours(kernel, topk)
    cka_kernel = kernel if options.cka_kernel == "linear" else rbf_kernel(kernel, options.rbf_sigma)
    sums = metrics.KernelSums.of(cka_kernel)
    n = feats.shape[-2]
    cka_self = metrics.hsic(metrics.kernel_inner(cka_kernel, cka_kernel), sums, sums, n, options.cka_unbiased)
    basis = orthonormal_centred(top_singular_basis(feats, options.cca_dim, options.seed))
    return _Side(kernel, knn, cka_kernel, sums, cka_self, basis)


def _score_sides(a: _Side, b: _Side, options: MetricOptions) -> dict[str, Tensor]:
    """All seven metrics between two sides with equal leading dims; values are [...] tensors."""
    n = a.kernel.shape[-1]
    match = neighbour_match(a.knn, b.knn)
    trace_ab = metrics.kernel_inner(a.cka_kernel, b.cka_kernel)
    hsic_ab = metrics.hsic(trace_ab, a.cka_sums, b.cka_sums, n, options.cka_unbiased)
    return {
        "cycle_knn": metrics.cycle_knn(a.knn, b.knn),
        "mutual_knn": metrics.mutual_knn(match),
        "lcs_knn": metrics.lcs_knn(match),
        "cka": metrics.normalised_alignment(hsic_ab, a.cka_self, b.cka_self),
        "cknna": metrics.cknna(a.kernel, b.kernel, a.knn, b.knn, match),
        "svcca": mean_canonical_correlation(a.basis, b.basis),
        "edit_distance_knn": metrics.edit_distance_knn(match),
    }


def score_layers(
    layers_a: Tensor | np.ndarray,
    feats_b: Tensor | np.ndarray,
    topk: int = 10,
    options: MetricOptions | None = None,
    *,
    layers_per_pass: int = 8,
    progress: bool = False,
) -> list[dict[str, float]]:
    """Score every layer of A against B with all seven metrics, several layers per pass.

    Args:
        layers_a: [L, N, D_a] features of N samples at L layers (rows paired with B's).
        feats_b: [N, D_b] features compared with every layer, or [L, N, D_b] compared layer by
            layer. Float32 and float64 are kept (both sides are promoted to the wider one);
            other real dtypes become float32. CPU or GPU, both on the same device.
        topk: neighbours per sample for the k-NN metrics and cknna (2 <= topk < N).
        options: preprocessing, CKA kernel and SVCCA settings; defaults are the paper's.
        layers_per_pass: layers batched together; the memory peak is about
            ``3 * layers_per_pass * N^2`` floats (kernels and their products).
        progress: show a progress bar over passes.

    Returns:
        One dict per layer mapping each name of :data:`METRIC_NAMES` to a float.

    Raises:
        AlignmentInputError: bad shapes, unpaired rows, NaN/inf values, or too few samples.
    """
    options = options or MetricOptions()
    a = as_features(layers_a, "layers_a", ndims=(3,))
    b = as_features(feats_b, "feats_b", ndims=(2, 3))
    a, b = check_paired(a, b, "layers_a", "feats_b")
    return _score_checked(a, b, topk, options, layers_per_pass, progress)


@torch.no_grad()
def _score_checked(
    a: Tensor, b: Tensor, topk: int, options: MetricOptions, layers_per_pass: int, progress: bool
) -> list[dict[str, float]]:
    """:func:`score_layers` on inputs already through ``as_features`` and ``check_paired``."""
    check_sizes(a.shape[-2], topk, options.cca_dim, a.shape[-1], b.shape[-1])
    if layers_per_pass < 1:
        raise ValueError(f"layers_per_pass must be at least 1, got {layers_per_pass}")
    shared_b = _build_side(b, topk, options) if b.ndim == 2 else None
    results: list[dict[str, float]] = []
    starts = range(0, a.shape[0], layers_per_pass)
    for start in tqdm(starts, desc="alignment", unit="pass", disable=not progress):
        chunk = slice(start, start + layers_per_pass)
        side_a = _build_side(a[chunk], topk, options)
        batch = side_a.knn.shape[0]
        side_b = shared_b.expand(batch) if shared_b is not None else _build_side(b[chunk], topk, options)
        values = _score_sides(side_a, side_b, options)
        columns = {name: values[name].tolist() for name in METRIC_NAMES}
        results.extend({name: float(columns[name][i]) for name in METRIC_NAMES} for i in range(batch))
    return results


def score_all(
    feats_a: Tensor | np.ndarray,
    feats_b: Tensor | np.ndarray,
    topk: int = 10,
    options: MetricOptions | None = None,
) -> dict[str, float]:
    """All seven alignment metrics between two paired feature sets, in one shared pass.

    Args:
        feats_a: [N, D_a] features, one row per sample.
        feats_b: [N, D_b] features of the same samples in the same order.
        topk: neighbours per sample for the k-NN metrics and cknna (2 <= topk < N).
        options: preprocessing, CKA kernel and SVCCA settings; defaults are the paper's.

    Returns:
        ``{name: value}`` for each name of :data:`METRIC_NAMES`, in that order.

    Raises:
        AlignmentInputError: bad shapes, unpaired rows, NaN/inf values, or too few samples.
    """
    a = as_features(feats_a, "feats_a", ndims=(2,))
    b = as_features(feats_b, "feats_b", ndims=(2,))
    a, b = check_paired(a, b, "feats_a", "feats_b")
    return _score_checked(a[None], b, topk, options or MetricOptions(), layers_per_pass=1, progress=False)[0]
