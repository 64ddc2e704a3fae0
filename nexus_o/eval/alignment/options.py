"""The metric names and the options every alignment metric shares."""

from __future__ import annotations

from dataclasses import dataclass

from nexus_o.eval.alignment.inputs import AlignmentInputError

# Column order of the paper's Table 7.
METRIC_NAMES: tuple[str, ...] = (
    "cycle_knn",
    "mutual_knn",
    "lcs_knn",
    "cka",
    "cknna",
    "svcca",
    "edit_distance_knn",
)


@dataclass(frozen=True)
class MetricOptions:
    """Everything but ``topk`` that shapes the seven metrics; defaults are the paper's.

    Attributes:
        clip_quantile: clip each feature matrix at this exact quantile of its absolute values
            before scoring (the reference's ``remove_outliers(..., exact=True)``); ``None`` or 1.0
            turns clipping off.
        l2_normalize: L2-normalise every sample (row) after clipping, as the reference does
            before every metric.
        cka_kernel: ``"linear"`` (inner products, the paper's) or ``"rbf"`` for ``cka`` only;
            neighbour lists and ``cknna`` always use inner products, as in the reference.
        cka_unbiased: use the unbiased HSIC estimator in ``cka`` (the reference's
            ``unbiased_cka``); the default is the biased one of the original CKA.
        rbf_sigma: bandwidth of the RBF kernel, ``exp(-|x - y|^2 / (2 sigma^2))``.
        cca_dim: number of singular directions kept per side in ``svcca``.
        seed: seed of the random projection inside ``svcca``'s randomised SVD; the reference
            leaves it unseeded, so its svcca varies from run to run.
    """

    clip_quantile: float | None = 0.95
    l2_normalize: bool = True
    cka_kernel: str = "linear"
    cka_unbiased: bool = False
    rbf_sigma: float = 1.0
    cca_dim: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        q = self.clip_quantile
        if q is not None and not 0.0 < q <= 1.0:
            raise AlignmentInputError(f"clip_quantile must be in (0, 1] or None, got {q}")
        if self.cka_kernel not in ("linear", "rbf"):
            raise AlignmentInputError(f"cka_kernel must be 'linear' or 'rbf', got {self.cka_kernel!r}")
        if not self.rbf_sigma > 0:
            raise AlignmentInputError(f"rbf_sigma must be positive, got {self.rbf_sigma}")
        if isinstance(self.cca_dim, bool) or not isinstance(self.cca_dim, int) or self.cca_dim < 1:
            raise AlignmentInputError(f"cca_dim must be a positive integer, got {self.cca_dim!r}")
