import numpy as np
import pytest
import torch

from nexus_o.eval.alignment import AlignmentInputError, MetricOptions, load_feature_file, score_all, score_layers


def _feats(n=20, d=12, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_mismatched_rows_name_both_counts():
    with pytest.raises(AlignmentInputError, match=r"feats_a has 20 samples .* feats_b has 19"):
        score_all(_feats(20), _feats(19))


def test_too_few_samples_for_topk():
    with pytest.raises(AlignmentInputError, match=r"N=10 samples is too few for topk=10: .* N must exceed topk"):
        score_all(_feats(10), _feats(10), topk=10)


def test_too_few_samples_for_unbiased_hsic():
    options = MetricOptions(cca_dim=2)
    with pytest.raises(AlignmentInputError, match=r"N=3 .* unbiased HSIC .* N >= 4"):
        score_all(_feats(3), _feats(3), topk=2, options=options)


def test_topk_below_two_is_refused():
    with pytest.raises(AlignmentInputError, match="topk must be an integer >= 2"):
        score_all(_feats(), _feats(), topk=1)


def test_cca_dim_larger_than_features():
    with pytest.raises(AlignmentInputError, match=r"cca_dim=10 .* D_a=12, D_b=6"):
        score_all(_feats(20, 12), _feats(20, 6), topk=3)


@pytest.mark.parametrize("bad, word", [(float("nan"), "1 NaN and 0 infinite"), (float("inf"), "0 NaN and 1 infinite")])
def test_non_finite_values_name_the_array_and_sample(bad, word):
    b = _feats()
    b[7, 3] = bad
    with pytest.raises(AlignmentInputError, match=rf"feats_b has {word} values \(first in sample 7\)"):
        score_all(_feats(), b)


def test_wrong_ndim():
    with pytest.raises(AlignmentInputError, match=r"feats_a: expected shape \[N, D\], got 3-D"):
        score_all(_feats()[None], _feats())
    with pytest.raises(AlignmentInputError, match=r"layers_a: expected shape \[L, N, D\], got 2-D"):
        score_layers(_feats(), _feats())


def test_layer_count_mismatch():
    with pytest.raises(AlignmentInputError, match="layers_a has 3 layers but feats_b has 2"):
        score_layers(torch.randn(3, 20, 12), torch.randn(2, 20, 12))


def test_bad_options():
    with pytest.raises(AlignmentInputError, match="clip_quantile"):
        MetricOptions(clip_quantile=1.5)
    with pytest.raises(AlignmentInputError, match="cka_kernel"):
        MetricOptions(cka_kernel="cosine")


def test_load_refuses_pickled_object_arrays(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(AlignmentInputError, match=r"objects.npy: not a plain numeric .npy array"):
        load_feature_file(path)


def test_load_refuses_npz_and_missing_files(tmp_path):
    archive = tmp_path / "feats.npz"
    np.savez(archive, a=np.zeros((4, 2)))
    with pytest.raises(AlignmentInputError, match="npz archive"):
        load_feature_file(archive)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        load_feature_file(tmp_path / "missing.npy")


def test_load_keeps_float64_and_converts_other_dtypes(tmp_path):
    np.save(tmp_path / "f64.npy", np.ones((5, 3)))
    np.save(tmp_path / "i16.npy", np.ones((5, 3), dtype=">i2"))  # big-endian ints
    assert load_feature_file(tmp_path / "f64.npy").dtype == torch.float64
    loaded = load_feature_file(tmp_path / "i16.npy")
    assert loaded.dtype == torch.float32 and loaded.sum().item() == 15.0
