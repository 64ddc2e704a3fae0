import pytest
import torch

from nexus_o.codecs.rvq import ResidualVQ, fit_residual_vq, kmeans, nearest


def clustered(n: int = 3000, dim: int = 6, seed: int = 0) -> torch.Tensor:
    """Gaussian blobs around 20 centres plus fine detail: structure that residual stages can peel off."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(20, dim, generator=g) * 4
    ids = torch.randint(0, 20, (n,), generator=g)
    return centres[ids] + torch.randn(n, dim, generator=g)


def test_error_falls_as_stages_are_added():
    data = clustered()
    rvq = fit_residual_vq(data, num_codebooks=4, codebook_size=32, iters=8, seed=0, progress=False)
    errors = rvq.stage_errors(data)
    baseline = float((data - data.mean(0)).square().mean())
    assert errors[0] < 0.2 * baseline
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]))
    assert errors[-1] < 0.5 * errors[0]


def test_fit_is_seeded():
    data = clustered()
    a = fit_residual_vq(data, 2, 16, iters=3, seed=7, progress=False).codebooks
    b = fit_residual_vq(data, 2, 16, iters=3, seed=7, progress=False).codebooks
    c = fit_residual_vq(data, 2, 16, iters=3, seed=8, progress=False).codebooks
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_quantize_dequantize_shapes_and_consistency():
    data = clustered(500)
    rvq = fit_residual_vq(data, 3, 8, iters=2, seed=0, progress=False)
    codes = rvq.quantize(data)
    assert codes.shape == (500, 3) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 8
    assert rvq.dequantize(codes).shape == (500, 6)
    # Stage 0 alone is plain nearest-centroid quantisation.
    assert torch.equal(codes[:, 0], nearest(data, rvq.codebooks[0]))
    with pytest.raises(ValueError, match=r"frames must be \[N, 6\]"):
        rvq.quantize(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="codes must be"):
        rvq.dequantize(torch.zeros(4, 5, dtype=torch.long))


def test_kmeans_edge_cases():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="at least 10 frames"):
        kmeans(torch.zeros(5, 2), 10, 2, g)
    # All-identical points: no NaN from empty clusters, every centroid on the point.
    centroids = kmeans(torch.ones(50, 3), 4, 3, g)
    assert torch.isfinite(centroids).all() and torch.allclose(centroids, torch.ones(4, 3))
    with pytest.raises(ValueError, match="non-empty"):
        ResidualVQ(torch.zeros(0, 4, 2))
