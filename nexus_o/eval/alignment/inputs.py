"""Checking feature arrays before any metric runs: shapes, pairing, finiteness, sample counts.

Every check raises :class:`AlignmentInputError` with a message that names the offending array
(or file) and the numbers involved, so that a bad input never surfaces as a crash deep inside a
matrix product or a top-k call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor


class AlignmentInputError(ValueError):
    """Features the alignment metrics cannot score; the message names the array and the problem."""


_SHAPE_NAMES = {2: "[N, D]", 3: "[L, N, D]"}


def as_features(x: Tensor | np.ndarray, name: str, ndims: tuple[int, ...] = (2,)) -> Tensor:
    """Check one feature array and return it as a float32/float64 tensor.

    Args:
        x: features, a torch tensor or numpy array; rows (dim -2) are samples.
        name: how messages refer to the array (an argument name or a file path).
        ndims: the accepted numbers of dimensions (2 for [N, D], 3 for [L, N, D]).

    Returns:
        The same values; float64 stays float64, every other real dtype becomes float32
        (half precision is too coarse for the kernels, as the reference's ``.float()`` also says).

    Raises:
        AlignmentInputError: wrong type, number of dimensions or dtype, an empty axis, or any NaN
            or infinite value (the message counts them and gives the first bad sample).
    """
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiu":
            raise AlignmentInputError(f"{name}: expected real numbers, got numpy dtype {x.dtype}")
        x = torch.from_numpy(np.asarray(x, dtype=x.dtype.newbyteorder("=")))
    elif not isinstance(x, Tensor):
        raise AlignmentInputError(f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.ndim not in ndims:
        wanted = " or ".join(_SHAPE_NAMES.get(n, f"{n}-D") for n in ndims)
        raise AlignmentInputError(f"{name}: expected shape {wanted}, got {x.ndim}-D shape {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise AlignmentInputError(f"{name}: expected real numbers, got dtype {x.dtype}")
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise AlignmentInputError(f"{name}: empty features, shape {tuple(x.shape)}")
    bad = ~torch.isfinite(x)
    if bad.any():
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(bad.sum()) - n_nan
        bad_samples = bad.any(dim=-1)
        if bad_samples.ndim == 2:
            bad_samples = bad_samples.any(dim=0)
        first = int(bad_samples.nonzero()[0, 0])
        raise AlignmentInputError(
            f"{name} has {n_nan} NaN and {n_inf} infinite values (first in sample {first}); "
            "drop or repair those samples before scoring"
        )
    return x


def check_paired(a: Tensor, b: Tensor, name_a: str, name_b: str) -> tuple[Tensor, Tensor]:
    """Check that two feature arrays describe the same samples and can be computed together.

    Args:
        a: [N, D_a] or [L, N, D_a] features, already through :func:`as_features`.
        b: [N, D_b] or [L, N, D_b] features (or [N, D_b] against a's [L, N, D_a]).
        name_a, name_b: how messages refer to the two arrays.

    Returns:
        ``(a, b)`` in a common dtype (float64 if either is float64).

    Raises:
        AlignmentInputError: different sample (row) counts, layer counts or devices.
    """
    n_a, n_b = a.shape[-2], b.shape[-2]
    if n_a != n_b:
        raise AlignmentInputError(
            f"{name_a} has {n_a} samples (rows) but {name_b} has {n_b}; rows must be the same samples, paired"
        )
    if a.ndim == 3 and b.ndim == 3 and a.shape[0] != b.shape[0]:
        raise AlignmentInputError(f"{name_a} has {a.shape[0]} layers but {name_b} has {b.shape[0]}")
    if a.device != b.device:
        raise AlignmentInputError(f"{name_a} is on {a.device} but {name_b} is on {b.device}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def check_sizes(n: int, topk: int, cca_dim: int, dim_a: int, dim_b: int) -> None:
    """Check that N samples of D_a and D_b features are enough for all seven metrics.

    Raises:
        AlignmentInputError: topk below 2 (the reference's cknna refuses it), N not above topk
            (each sample needs topk neighbours besides itself), N below 4 (the unbiased HSIC
            estimator divides by N - 3), or cca_dim above N, D_a or D_b (svcca's rank).
    """
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 2:
        raise AlignmentInputError(f"topk must be an integer >= 2 (cknna needs at least 2 neighbours), got {topk!r}")
    if n <= topk:
        raise AlignmentInputError(
            f"N={n} samples is too few for topk={topk}: each sample needs {topk} neighbours besides itself, "
            "so N must exceed topk"
        )
    if n < 4:
        raise AlignmentInputError(f"N={n} samples is too few for the unbiased HSIC of cknna, which needs N >= 4")
    if cca_dim > min(n, dim_a, dim_b):
        raise AlignmentInputError(
            f"svcca with cca_dim={cca_dim} needs at least that many samples and feature dims; "
            f"got N={n}, D_a={dim_a}, D_b={dim_b}"
        )


def load_feature_file(path: str | Path) -> Tensor:
    """Load one [N, D] feature matrix from a ``.npy`` file, never unpickling anything.

    Raises:
        FileNotFoundError: the file does not exist.
        AlignmentInputError: not a plain numeric .npy array (pickled/object data, an .npz
            archive, a corrupt file), or the array fails :func:`as_features`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise AlignmentInputError(f"{path}: not a plain numeric .npy array ({err})") from err
    if not isinstance(loaded, np.ndarray):
        loaded.close()
        raise AlignmentInputError(f"{path}: expected one .npy array, got an .npz archive")
    return as_features(loaded, name=str(path), ndims=(2,))
