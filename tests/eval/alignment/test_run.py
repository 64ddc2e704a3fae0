"""`nexus-o align run` and `run_alignment` end to end on the tiny preset; Table 7 and plot helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nexus_o.cli import app
from nexus_o.eval.alignment import METRIC_NAMES
from nexus_o.eval.alignment.backbones import save_vl_checkpoint
from nexus_o.eval.alignment.plots import plot_layers
from nexus_o.eval.alignment.results import table7_markdown
from nexus_o.eval.alignment.run import run_alignment
from tests.eval.alignment.caption_data import write_caption_manifest, write_lines

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_LAYERS = 2  # num_hidden_layers of the tiny preset: hidden states 1..2 are scored


def test_align_run_end_to_end(tmp_path):
    manifest = write_caption_manifest(tmp_path / "data", 12)
    out = tmp_path / "out"
    args = ["align", "run", "--model", "tiny", "--data", str(manifest), "--out", str(out), "--topk", "3",
            "--batch-size", "12"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Table 7" in result.output and "wrote" in result.output

    scores = json.loads((out / "scores.json").read_text())
    assert scores["num_samples"] == 12 and scores["topk"] == 3
    assert scores["hidden_states"] == TINY_LAYERS + 1 and scores["layers"] == [1, 2]
    assert list(scores["unembedding"]) == ["ours:vision", "ours:vision+audio", "ours:audio"]
    assert list(scores["embedding"]) == ["ours:vision", "ours:vision+audio"]
    for values in scores["unembedding"].values():
        assert list(values) == list(METRIC_NAMES)
    for per_layer in scores["embedding"].values():
        assert len(per_layer) == TINY_LAYERS and all(list(layer) == list(METRIC_NAMES) for layer in per_layer)
    means = scores["embedding_mean"]["ours:vision+audio"]
    assert means == pytest.approx([np.mean(list(layer.values())) for layer in scores["embedding"]["ours:vision+audio"]])

    table = (out / "table7.md").read_text()
    assert table.startswith("| model | " + " | ".join(METRIC_NAMES) + " |")
    assert "| NEXUS-O (tiny) |" in table and "| NEXUS-O (tiny) vision+audio |" in table
    assert (out / "layers.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "features" / "ours" / "embedding_vision_audio.npy").is_file()

    # Scoring again from the saved features, with another topk, loads no model.
    again = runner.invoke(app, ["align", "run", "--out", str(out), "--rescore", "--topk", "4", "--per-metric"])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "scores.json").read_text())["topk"] == 4
    assert (out / "layers_cknna.png").read_bytes()[:8] == PNG_MAGIC


def test_a_baseline_equal_to_our_vision_language_part_scores_the_same(tiny, tmp_path):
    # Without audio our model is Qwen2.5-VL: exported as a plain checkpoint, it must score identically.
    baseline = save_vl_checkpoint(*tiny, tmp_path / "qwen")
    manifest = write_caption_manifest(tmp_path / "data", 12, audio=False)
    result = run_alignment("tiny", manifest, tmp_path / "out", baseline=baseline, topk=3, batch_size=12, progress=False)
    scores = result.scores
    assert list(scores["unembedding"]) == ["baseline:vision", "ours:vision"]
    assert scores["unembedding"]["baseline:vision"] == pytest.approx(scores["unembedding"]["ours:vision"], abs=1e-6)
    for ours, base in zip(scores["embedding"]["ours:vision"], scores["embedding"]["baseline:vision"], strict=True):
        assert base == pytest.approx(ours, abs=1e-4)
    assert "| Qwen2.5-VL (qwen) |" in result.table7.read_text()
    assert json.loads((tmp_path / "out" / "features" / "meta.json").read_text())["models"] == {
        "ours": "NEXUS-O (tiny)", "baseline": "Qwen2.5-VL (qwen)"}


@pytest.mark.parametrize("case, message", [
    ("empty", "holds no samples"),
    ("no_image", "bad.jsonl:2: expected exactly one image, got 0"),
    ("few", "gives 5 sample(s), but topk=10 with svcca's cca_dim=10 needs at least 11"),
    ("no_data", "--model and --data are needed"),
])
def test_align_run_errors(tmp_path, case, message):
    good = write_caption_manifest(tmp_path, 5)
    lines = [json.loads(line) for line in good.read_text().splitlines()]
    data = {"empty": write_lines(tmp_path / "empty.jsonl", []),
            "no_image": write_lines(tmp_path / "bad.jsonl", [lines[0], {
                "messages": [{"role": "user", "content": "<audio>"}, {"role": "assistant", "content": "a cat"}],
                "audios": ["speech/0.wav"]}]),
            "few": good, "no_data": None}[case]
    args = ["align", "run", "--model", "tiny", "--out", str(tmp_path / "out")] + (["--data", str(data)] if data else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())  # rich/typer may wrap long lines


def test_table7_marks_best_and_second_and_leaves_extra_rows_unranked():
    rows = {
        "baseline:vision": dict.fromkeys(METRIC_NAMES, 0.1),
        "ours:vision": dict.fromkeys(METRIC_NAMES, 0.3),
        "ours:vision+audio": dict.fromkeys(METRIC_NAMES, 0.2),
        "ours:audio": dict.fromkeys(METRIC_NAMES, 0.9),
    }
    table = table7_markdown({"unembedding": rows, "models": {"ours": "Ours", "baseline": "Base"}, "num_samples": 4,
                             "manifest": "m.jsonl", "topk": 2})
    lines = table.splitlines()
    assert lines[2].startswith("| Base | 0.10000 |")
    assert lines[3].startswith("| Ours | **0.30000** |")
    assert lines[4].startswith("| Ours vision+audio | <u>0.20000</u> |")
    assert lines[5].startswith("| Ours audio (extra) | 0.90000 |")


def test_plot_layers_checks_its_series(tmp_path):
    with pytest.raises(ValueError, match="lengths"):
        plot_layers({"a": [1.0, 2.0], "b": [1.0]}, tmp_path / "x.png", title="t", ylabel="y")
    with pytest.raises(ValueError, match="2 layer names for 3 values"):
        plot_layers({"a": [1.0, 2.0, 3.0]}, tmp_path / "x.png", title="t", ylabel="y", layers=[1, 2])
    path = plot_layers({"a": [0.5, float("nan")]}, tmp_path / "x.png", title="t", ylabel="y", layers=[1, 2])
    assert path.read_bytes()[:8] == PNG_MAGIC
