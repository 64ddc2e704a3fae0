import torch

from nexus_o.eval.alignment.features import clip_outliers, exact_quantile, prepare_features


def test_exact_quantile_is_the_sorted_element_at_floor_q_m():
    values = torch.tensor([[5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0, 8.0, 6.0, 0.0]])
    # int(0.95 * 10) = 9 -> the largest; int(0.5 * 10) = 5 -> the sixth smallest (5.0)
    assert exact_quantile(values, 0.95).tolist() == [9.0]
    assert exact_quantile(values, 0.5).tolist() == [5.0]
    big = torch.randn(3, 1001, generator=torch.Generator().manual_seed(0))
    expected = big.sort(dim=-1).values[:, int(0.95 * 1001)]
    assert torch.equal(exact_quantile(big, 0.95), expected)


def test_clip_uses_absolute_values_and_one_threshold_per_matrix():
    layer0 = torch.tensor([[-10.0, 1.0], [2.0, -3.0], [0.5, 4.0]])  # |x| sorted: .5 1 2 3 4 10
    layer1 = 100.0 * layer0
    clipped = clip_outliers(torch.stack([layer0, layer1]), 0.5)  # index int(0.5 * 6) = 3 -> 3.0
    assert clipped[0].tolist() == [[-3.0, 1.0], [2.0, -3.0], [0.5, 3.0]]
    assert torch.equal(clipped[1], 100.0 * clipped[0])


def test_clip_disabled_by_none_or_one():
    x = torch.randn(4, 3)
    assert clip_outliers(x, None) is x
    assert clip_outliers(x, 1.0) is x


def test_prepare_normalises_each_sample_after_clipping():
    x = torch.tensor([[3.0, 4.0], [0.0, -2.0], [100.0, 0.0]])  # |x| sorted: 0 0 2 3 4 100
    out = prepare_features(x, clip_quantile=0.8)  # index int(0.8 * 6) = 4 -> 4.0
    expected = torch.tensor([[0.6, 0.8], [0.0, -1.0], [1.0, 0.0]])
    assert torch.allclose(out, expected)
    raw = prepare_features(x, clip_quantile=None, l2_normalize=False)
    assert torch.equal(raw, x)
