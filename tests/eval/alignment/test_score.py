"""The shared, batched pass against the reference way and against a per-layer loop."""

import numpy as np
import pytest
import torch

from nexus_o.eval.alignment import METRIC_NAMES, MetricOptions, reference_scores, score_all, score_layers

OPTIONS = [
    MetricOptions(),
    MetricOptions(cka_unbiased=True, cca_dim=4),
    MetricOptions(cka_kernel="rbf", rbf_sigma=0.8, clip_quantile=0.9),
    MetricOptions(clip_quantile=None, l2_normalize=False, seed=3),
]


def _pair(n=48, d_a=16, d_b=12, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d_a, generator=gen, dtype=dtype)
    b = a[:, :d_b] @ torch.randn(d_b, d_b, generator=gen, dtype=dtype) + torch.randn(n, d_b, generator=gen, dtype=dtype)
    return a, b


def _assert_close(got, expected, tol):
    assert list(got) == list(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert got[name] == pytest.approx(expected[name], abs=tol), name


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("topk", [3, 10])
def test_shared_pass_equals_reference_way(options, topk):
    a, b = _pair(seed=topk)
    # the reference builds its mutual_knn masks in float32, hence 1e-7
    _assert_close(score_all(a, b, topk, options), reference_scores(a, b, topk, options), tol=1e-7)


def test_shared_pass_equals_reference_way_in_float32():
    a, b = _pair(n=64, dtype=torch.float32, seed=5)
    fast = score_all(a, b, 5)
    assert all(isinstance(v, float) for v in fast.values())
    _assert_close(fast, reference_scores(a, b, 5), tol=1e-5)


def test_layer_batch_equals_per_layer_loop_with_shared_b():
    gen = torch.Generator().manual_seed(1)
    layers = torch.randn(5, 40, 14, generator=gen, dtype=torch.float64)
    b = torch.randn(40, 11, generator=gen, dtype=torch.float64)
    batched = score_layers(layers, b, topk=4, layers_per_pass=2)  # passes of 2, 2, 1 layers
    assert len(batched) == 5
    for i, scores in enumerate(batched):
        _assert_close(scores, score_all(layers[i], b, topk=4), tol=1e-12)


def test_layer_batch_equals_per_layer_loop_with_layered_b():
    gen = torch.Generator().manual_seed(2)
    layers_a = torch.randn(3, 30, 12, generator=gen, dtype=torch.float64)
    layers_b = torch.randn(3, 30, 10, generator=gen, dtype=torch.float64)
    options = MetricOptions(cka_kernel="rbf", cca_dim=5)
    batched = score_layers(layers_a, layers_b, topk=3, options=options)
    for i, scores in enumerate(batched):
        _assert_close(scores, score_all(layers_a[i], layers_b[i], topk=3, options=options), tol=1e-12)
        _assert_close(scores, reference_scores(layers_a[i], layers_b[i], topk=3, options=options), tol=1e-7)


def test_symmetric_metrics_are_symmetric_and_cycle_knn_is_not_assumed_so():
    a, b = _pair(n=12, d_a=6, d_b=6, seed=1)
    options = MetricOptions(cca_dim=3)
    ab, ba = score_all(a, b, 3, options), score_all(b, a, 3, options)
    for name in ("mutual_knn", "lcs_knn", "cka", "svcca", "edit_distance_knn"):
        assert ab[name] == pytest.approx(ba[name], abs=1e-12), name
    # for this seed the two cycles differ (worked out by the reference way too)
    assert ab["cycle_knn"] != ba["cycle_knn"]
    assert ab["cycle_knn"] == reference_scores(a, b, 3, options)["cycle_knn"]
    assert ba["cycle_knn"] == reference_scores(b, a, 3, options)["cycle_knn"]


def test_numpy_input_mixed_dtypes_and_untouched_global_rng():
    a, b = _pair(n=30, seed=4)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    from_numpy = score_all(a.numpy(), b.float().numpy(), 4)
    assert torch.equal(torch.random.get_rng_state(), before)  # svcca's seeded SVD forks the RNG
    _assert_close(from_numpy, score_all(a, b.float(), 4), tol=0.0)
    # float64 with float32 is promoted to float64
    _assert_close(from_numpy, score_all(a, b.float().double(), 4), tol=0.0)


def test_scores_are_deterministic_and_seed_only_moves_svcca():
    a, b = _pair(n=40, d_a=30, d_b=25, seed=6)
    first, again = score_all(a, b, 5), score_all(a, b, 5)
    assert first == again
    reseeded = score_all(a, b, 5, MetricOptions(seed=7))
    assert {k for k in METRIC_NAMES if reseeded[k] != first[k]} <= {"svcca"}


def test_layer_results_keep_layer_order():
    gen = torch.Generator().manual_seed(9)
    b = torch.randn(25, 12, generator=gen, dtype=torch.float64)
    noise = torch.randn(25, 12, generator=gen, dtype=torch.float64)
    # layer i is b plus i units of noise, so alignment falls with the layer index
    layers = torch.stack([b + i * noise for i in range(4)])
    cka = [s["cka"] for s in score_layers(layers, b, topk=3, layers_per_pass=3)]
    assert cka == sorted(cka, reverse=True) and cka[0] == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(cka).all()


def test_float32_cka_survives_a_large_common_offset():
    # Hidden states often share a big common direction: every kernel entry is then nearly equal
    # and centring cancels most of each sum. Sums are accumulated in float64, so float32 input
    # still gives CKA to about 1e-6 (float32 sums were off by several percent here).
    gen = torch.Generator().manual_seed(0)
    common = 4.0 * torch.randn(1, 64, generator=gen)
    a = common + torch.randn(512, 64, generator=gen)
    b = common + 0.5 * a + torch.randn(512, 64, generator=gen)
    for options in (MetricOptions(), MetricOptions(cka_unbiased=True)):
        single, double = score_all(a, b, 10, options), score_all(a.double(), b.double(), 10, options)
        assert single["cka"] == pytest.approx(double["cka"], abs=1e-5)
        assert single["cknna"] == pytest.approx(double["cknna"], abs=1e-6)
