"""SVCCA: canonical correlations between the top singular directions of two feature sets.

Reference (platonic-rep ``svcca``): standardise each feature column (subtract the mean, divide
by ``std + 1e-8``), keep the left singular vectors U of a randomised rank-``cca_dim`` SVD
(``torch.svd_lowrank``), fit scikit-learn's ``CCA(n_components=cca_dim)`` on (U_A, U_B), add
1e-10 Gaussian jitter to the canonical variates and average their ``cca_dim`` correlations.

Here the last two steps are computed in closed form: with as many components as dimensions,
CCA's correlations are the canonical correlations of the two column spaces, i.e. the singular
values of Q_A^T Q_B for orthonormal bases Q of the centred U's. scikit-learn reaches the same
numbers iteratively (NIPALS, tolerance 1e-6), so results agree to about that tolerance; the
jitter only guards sklearn against NaN and is left out. The randomised SVD is seeded (the
reference's is not), inside a forked RNG so that the caller's random state is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor


@contextmanager
def seeded_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run a block with the RNG of ``device`` seeded, restoring the previous state afterwards."""
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


def standardise_columns(feats: Tensor) -> Tensor:
    """Centre each feature column and divide by its (N - 1) standard deviation plus 1e-8.

    Args:
        feats: [..., N, D].

    Returns:
        [..., N, D].
    """
    centred = feats - feats.mean(dim=-2, keepdim=True)
    return centred / (centred.std(dim=-2, keepdim=True) + 1e-8)


def top_singular_basis(feats: Tensor, cca_dim: int, seed: int) -> Tensor:
    """Left singular vectors of the standardised features from the seeded randomised SVD.

    ``torch.svd_lowrank`` draws one [D, q] (or [N, q] for wide inputs) Gaussian matrix shared by
    all batch entries, so a stack of layers gets exactly the vectors each layer gets alone.

    Args:
        feats: [..., N, D] prepared features.
        cca_dim: number of directions q, at most min(N, D).
        seed: seed of the random projection.

    Returns:
        [..., N, q] U of the randomised SVD.
    """
    with seeded_rng(feats.device, seed):
        u, _, _ = torch.svd_lowrank(standardise_columns(feats), q=cca_dim)
    return u


def orthonormal_centred(u: Tensor) -> Tensor:
    """An orthonormal basis of the span of U's centred columns (CCA centres its inputs).

    Args:
        u: [..., N, q].

    Returns:
        [..., N, q].
    """
    return torch.linalg.qr(u - u.mean(dim=-2, keepdim=True)).Q


def mean_canonical_correlation(basis_a: Tensor, basis_b: Tensor) -> Tensor:
    """Mean canonical correlation of two spans given orthonormal, centred bases.

    Args:
        basis_a: [..., N, q] from :func:`orthonormal_centred`.
        basis_b: [..., N, q] likewise (broadcastable).

    Returns:
        [...] mean of the q canonical correlations, in [0, 1].
    """
    corr = torch.linalg.svdvals(basis_a.mT @ basis_b)
    return corr.clamp(max=1.0).mean(dim=-1)
