import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nexus_o.cli import app
from nexus_o.eval.alignment import METRIC_NAMES, score_all

runner = CliRunner()


@pytest.fixture
def feature_files(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 16)).astype(np.float32)
    b = a[:, :12] @ rng.normal(size=(12, 12)) + rng.normal(size=(40, 12))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    return tmp_path / "a.npy", tmp_path / "b.npy", a, b


def test_text_output_lists_all_seven_metrics(feature_files):
    path_a, path_b, _, _ = feature_files
    result = runner.invoke(app, ["align", "score", str(path_a), str(path_b)])
    assert result.exit_code == 0, result.output
    for name in METRIC_NAMES:
        assert name in result.output
    assert "topk=10" in result.output


def test_json_output_is_one_object_with_exactly_the_metric_keys(feature_files):
    path_a, path_b, a, b = feature_files
    result = runner.invoke(app, ["align", "score", str(path_a), str(path_b), "--topk", "5", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert list(scores) == list(METRIC_NAMES)
    expected = score_all(a, b, topk=5)
    assert scores == pytest.approx(expected)


def test_mismatched_rows_is_a_clear_error(feature_files, tmp_path):
    path_a, _, a, _ = feature_files
    np.save(tmp_path / "short.npy", a[:30])
    result = runner.invoke(app, ["align", "score", str(path_a), str(tmp_path / "short.npy"), "--json"])
    assert result.exit_code == 2
    assert "has 40 samples (rows) but" in result.output and "short.npy has 30" in result.output


def test_nan_features_name_the_file(feature_files, tmp_path):
    path_a, _, a, _ = feature_files
    bad = a.copy()
    bad[3, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    result = runner.invoke(app, ["align", "score", str(path_a), str(tmp_path / "nan.npy")])
    assert result.exit_code == 2
    assert "nan.npy has 1 NaN and 0 infinite values (first in sample 3)" in result.output
