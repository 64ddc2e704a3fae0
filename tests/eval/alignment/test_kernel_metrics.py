"""cka, cknna and svcca against hand values and independent brute-force definitions."""

import itertools
import math

import pytest
import torch

from nexus_o.eval.alignment import MetricOptions, reference_scores, score_all

RAW = dict(clip_quantile=None, l2_normalize=False)


def _pair(n=8, d_a=5, d_b=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d_a, generator=gen, dtype=torch.float64)
    b = a[:, :d_b] + 0.7 * torch.randn(n, d_b, generator=gen, dtype=torch.float64)
    return a, b


def test_one_dimensional_features_give_squared_and_plain_correlation():
    # x = 1 2 3 4 and y = 1 3 2 4: centred dot 4, centred norms^2 5 and 5 -> corr 0.8.
    # Linear biased CKA of 1-D features is corr^2 (HSIC_kl 16 over sqrt(25 * 25) + 1e-6);
    # SVCCA of 1-D features is |corr|.
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    y = torch.tensor([[1.0], [3.0], [2.0], [4.0]], dtype=torch.float64)
    scores = score_all(x, y, topk=2, options=MetricOptions(cca_dim=1, **RAW))
    assert scores["cka"] == pytest.approx(16 / (25 + 1e-6), abs=1e-12)
    assert scores["svcca"] == pytest.approx(0.8, abs=1e-12)


def test_biased_cka_equals_the_feature_space_formula():
    a, b = _pair(n=12)
    ac, bc = a - a.mean(0), b - b.mean(0)
    fro2 = lambda m: (m**2).sum()  # noqa: E731
    expected = fro2(ac.T @ bc) / (torch.sqrt(fro2(ac.T @ ac) * fro2(bc.T @ bc)) + 1e-6)
    scores = score_all(a, b, topk=3, options=MetricOptions(cca_dim=3, **RAW))
    assert scores["cka"] == pytest.approx(expected.item(), abs=1e-12)


def _hsic_u_statistic(kx, ky):
    """Unbiased HSIC as the U-statistic over ordered 4-tuples of distinct samples (Song et al. 2012)."""
    x, y = kx.tolist(), ky.tolist()
    total, count = 0.0, 0
    for quad in itertools.permutations(range(len(x)), 4):
        for s, t, u, v in itertools.permutations(quad):
            total += (x[s][t] * y[s][t] + x[s][t] * y[u][v] - 2 * x[s][t] * y[s][u]) / 24
        count += 1
    return total / count


def test_unbiased_cka_equals_the_u_statistic():
    a, b = _pair(n=6, d_a=3, d_b=3, seed=1)
    ka, kb = a @ a.T, b @ b.T
    ab, aa, bb = _hsic_u_statistic(ka, kb), _hsic_u_statistic(ka, ka), _hsic_u_statistic(kb, kb)
    scores = score_all(a, b, topk=2, options=MetricOptions(cka_unbiased=True, cca_dim=3, **RAW))
    assert scores["cka"] == pytest.approx(ab / (math.sqrt(aa * bb) + 1e-6), abs=1e-10)


def test_rbf_cka_matches_explicit_kernels():
    a, b = _pair(n=10)
    sigma = 1.3
    gauss = lambda x: torch.exp(-(torch.cdist(x, x) ** 2) / (2 * sigma**2))  # noqa: E731
    ka, kb = gauss(a), gauss(b)
    h = torch.eye(10, dtype=torch.float64) - 0.1
    hsic = lambda p, q: torch.trace(p @ h @ q @ h)  # noqa: E731
    expected = hsic(ka, kb) / (torch.sqrt(hsic(ka, ka) * hsic(kb, kb)) + 1e-6)
    options = MetricOptions(cka_kernel="rbf", rbf_sigma=sigma, cca_dim=3, **RAW)
    assert score_all(a, b, topk=3, options=options)["cka"] == pytest.approx(expected.item(), abs=1e-10)


def _masked_hsic_loops(ka, kb, mask):
    """The reference's hsic_unbiased(mask * K, mask * L), term by term in plain loops."""
    n = len(ka)
    x = [[ka[i][j] * mask[i][j] if i != j else 0.0 for j in range(n)] for i in range(n)]
    y = [[kb[i][j] * mask[i][j] if i != j else 0.0 for j in range(n)] for i in range(n)]
    trace = sum(x[i][j] * y[j][i] for i in range(n) for j in range(n))
    sum_x, sum_y = sum(map(sum, x)), sum(map(sum, y))
    ones_xy_ones = sum(x[i][j] * y[j][m] for i in range(n) for j in range(n) for m in range(n))
    return (trace + sum_x * sum_y / ((n - 1) * (n - 2)) - 2 * ones_xy_ones / (n - 2)) / (n * (n - 3))


def _cknna_loops(a, b, topk):
    ka, kb = (a @ a.T).tolist(), (b @ b.T).tolist()
    n = len(ka)

    def top_mask(m):
        rows = [sorted((j for j in range(n) if j != i), key=lambda j: -m[i][j])[:topk] for i in range(n)]
        return [[1.0 if j in rows[i] else 0.0 for j in range(n)] for i in range(n)]

    mask_a, mask_b = top_mask(ka), top_mask(kb)
    both = [[mask_a[i][j] * mask_b[i][j] for j in range(n)] for i in range(n)]
    ab = _masked_hsic_loops(ka, kb, both)
    aa, bb = _masked_hsic_loops(ka, ka, mask_a), _masked_hsic_loops(kb, kb, mask_b)
    return ab / (math.sqrt(aa * bb) + 1e-6)


@pytest.mark.parametrize("topk", [2, 4, 7])
def test_cknna_matches_plain_loops(topk):
    a, b = _pair(n=11, seed=topk)
    scores = score_all(a, b, topk=topk, options=MetricOptions(cca_dim=3, **RAW))
    assert scores["cknna"] == pytest.approx(_cknna_loops(a, b, topk), abs=1e-10)


@pytest.mark.parametrize("n", [5, 9])
def test_cknna_with_all_other_samples_is_unbiased_linear_cka(n):
    # With topk = N - 1 each top-k mask keeps every off-diagonal pair and hsic_unbiased zeroes
    # the diagonal anyway, so the masked kernels are the kernels: the reference's cknna is then
    # exactly its unbiased linear CKA (same ratio, same 1e-6).
    a, b = _pair(n=n, seed=n)
    options = MetricOptions(cka_unbiased=True, cca_dim=3)
    fast = score_all(a, b, topk=n - 1, options=options)
    assert fast["cknna"] == pytest.approx(fast["cka"], abs=1e-12)
    ref = reference_scores(a, b, topk=n - 1, options=options)
    assert ref["cknna"] == pytest.approx(ref["cka"], abs=1e-12)
    assert fast["cknna"] == pytest.approx(ref["cknna"], abs=1e-12)


def test_cknna_is_only_nearly_symmetric():
    # The neighbour mask is not symmetric, so HSIC's 1^T X Y 1 term changes when A and B swap.
    a, b = _pair(n=40, d_a=12, d_b=11, seed=3)
    ab, ba = score_all(a, b, topk=5)["cknna"], score_all(b, a, topk=5)["cknna"]
    assert ab != ba and abs(ab - ba) < 1e-2
    assert ab == pytest.approx(_cknna_loops(*_prepared(a, b), 5), abs=1e-10)
    assert ba == pytest.approx(_cknna_loops(*_prepared(b, a), 5), abs=1e-10)


def _prepared(a, b):
    from nexus_o.eval.alignment.features import prepare_features

    return prepare_features(a), prepare_features(b)


def test_identical_features_score_near_one():
    a, _ = _pair(n=30, d_a=12)
    scores = score_all(a, a.clone(), topk=5)
    for name in ("mutual_knn", "svcca", "edit_distance_knn"):
        assert scores[name] == pytest.approx(1.0, abs=1e-9), name
    # cycle_knn of a space with itself is the share of samples with a mutual neighbour, not 1
    assert 0.5 < scores["cycle_knn"] <= 1.0
    assert scores["lcs_knn"] == 5.0  # the full list length, not 1
    # the 1e-6 added after the square root keeps CKA and CKNNA just below 1
    assert 1 - 1e-4 < scores["cka"] < 1.0 and 1 - 1e-4 < scores["cknna"] < 1.0
