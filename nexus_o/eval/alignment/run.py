"""The whole alignment analysis of paper section 4.2: extract features, score them, write the report.

``run_alignment`` writes into ``out_dir``::

    features/meta.json              manifest, sample lines, model labels (for re-scoring)
    features/<model>/<stage>_<key>.npy   the extracted features (see :mod:`.extract`)
    scores.json                     every pair's seven metrics, per stage (and per layer)
    table7.md                       the unembedding stage as the paper's Table 7
    layers.png                      the embedding stage as the paper's Figure 3
    layers_<metric>.png             one plot per metric (with ``per_metric_plots``)

``rescore_alignment`` recomputes the last four from saved features, with no model loaded.
"""

from __future__ import annotations

import gc
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from nexus_o.eval.alignment.backbones import load_baseline, load_ours, resolve_device
from nexus_o.eval.alignment.extract import ModelFeatures, extract_features
from nexus_o.eval.alignment.options import MetricOptions
from nexus_o.eval.alignment.plots import plot_embedding_stage
from nexus_o.eval.alignment.results import (
    FIRST_SCORED_LAYER,
    PAIR_DESCRIPTIONS,
    feature_pairs,
    layer_means,
    table7_markdown,
    write_scores_json,
)
from nexus_o.eval.alignment.samples import check_enough_samples, read_caption_manifest
from nexus_o.eval.alignment.score import score_all, score_layers

FEATURES_DIR = "features"


@dataclass(frozen=True)
class AlignmentOutputs:
    """What a run produced: the scores (as in scores.json) and the files written."""

    scores: dict
    scores_json: Path
    table7: Path
    plots: list[Path]
    features_dir: Path


def score_features(features: dict[str, ModelFeatures], topk: int = 10, options: MetricOptions | None = None,
                   device: str | torch.device | None = None, progress: bool = True) -> dict[str, dict]:
    """Score every pair of :func:`.results.feature_pairs`.

    Returns:
        ``{"unembedding": {pair: {metric: value}}, "embedding": {pair: [{metric: value} per layer]},
        "embedding_mean": {pair: [mean of the seven metrics per layer]}}``; embedding lists run
        over hidden states 1..L (see :data:`.results.FIRST_SCORED_LAYER`).
    """
    options = options or MetricOptions()
    device = resolve_device(device)
    pairs = feature_pairs(features)
    scores: dict[str, dict] = {"unembedding": {}, "embedding": {}, "embedding_mean": {}}
    for key, (a, b) in pairs["unembedding"].items():
        scores["unembedding"][key] = score_all(_tensor(a, device), _tensor(b, device), topk, options)
    for key, (a, b) in pairs["embedding"].items():
        per_layer = score_layers(_tensor(a, device), _tensor(b, device), topk, options, progress=progress)
        scores["embedding"][key] = per_layer
        scores["embedding_mean"][key] = layer_means(per_layer)
    return scores


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def run_alignment(model: str | Path, manifest: str | Path, out_dir: str | Path, *,
                  baseline: str | Path | None = None, topk: int = 10, limit: int | None = None,
                  batch_size: int = 8, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                  options: MetricOptions | None = None, per_metric_plots: bool = False,
                  progress: bool = True) -> AlignmentOutputs:
    """Extract, score and report the vision-language alignment of our model (and a baseline).

    Args:
        model: our checkpoint folder, or a preset name (``tiny``).
        manifest: image-caption(-speech) JSONL (see :mod:`.samples` for its shape).
        out_dir: where everything is written (created; existing files are replaced).
        baseline: a plain Qwen2.5-VL checkpoint folder, scored on the image/text side only.
        topk: neighbours per sample for the k-NN metrics and cknna.
        limit: use only the first ``limit`` samples.
        batch_size: samples per forward pass.
        device: where models run and metrics are computed (default: GPU if any, else CPU).
        dtype: model weights' dtype ("float32", "bfloat16", "float16"; default: the checkpoint's).
        options: metric options (clipping, kernel, svcca dims); defaults are the paper's.
        per_metric_plots: also write ``layers_<metric>.png``.
        progress: show progress bars.

    Raises:
        FileNotFoundError: the manifest, a media file or a checkpoint is missing.
        ManifestError: a manifest line has the wrong shape (names the line).
        AlignmentInputError: no samples, or too few for ``topk`` (says how many are needed).
    """
    options = options or MetricOptions()
    samples = read_caption_manifest(manifest, limit)
    source = f"{manifest}" + (f" with --limit {limit}" if limit else "")
    check_enough_samples(len(samples), topk, options, source=source)
    out_dir = Path(out_dir)
    features_dir = out_dir / FEATURES_DIR
    loaders = {"ours": lambda: load_ours(model, device, dtype)}
    if baseline is not None:
        loaders["baseline"] = lambda: load_baseline(baseline, device, dtype)
    features: dict[str, ModelFeatures] = {}
    labels: dict[str, str] = {}
    for name, load in loaders.items():
        backbone = load()
        labels[name] = backbone.label
        features[name] = extract_features(backbone, samples, batch_size=batch_size, progress=progress)
        features[name].save(features_dir / name)
        del backbone  # one model in memory at a time
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    meta = {"manifest": str(Path(manifest).resolve()), "lines": [s.line for s in samples],
            "captions": [s.caption for s in samples], "models": labels}
    (features_dir / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return _report(features, meta, out_dir, topk, options, device, per_metric_plots, progress)


def rescore_alignment(out_dir: str | Path, topk: int = 10, options: MetricOptions | None = None,
                      device: str | torch.device | None = None, per_metric_plots: bool = False,
                      progress: bool = True) -> AlignmentOutputs:
    """Score the features a previous :func:`run_alignment` saved under ``out_dir/features`` again
    (e.g. with another topk), rewriting scores.json, table7.md and the plots; no model is loaded.

    Raises:
        FileNotFoundError: ``out_dir/features`` lacks meta.json or a model's features.
    """
    out_dir = Path(out_dir)
    meta_file = out_dir / FEATURES_DIR / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{meta_file} not found; run `nexus-o align run` first to extract features")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    options = options or MetricOptions()
    check_enough_samples(len(meta["lines"]), topk, options, source=f"{out_dir / FEATURES_DIR}")
    features = {name: ModelFeatures.load(out_dir / FEATURES_DIR / name) for name in meta["models"]}
    return _report(features, meta, out_dir, topk, options, device, per_metric_plots, progress)


def _report(features: dict[str, ModelFeatures], meta: dict, out_dir: Path, topk: int, options: MetricOptions,
            device, per_metric_plots: bool, progress: bool) -> AlignmentOutputs:
    """Score the features and write scores.json, table7.md and the plots."""
    scored = score_features(features, topk, options, device, progress)
    hidden_states = int(next(iter(features.values())).embedding["vision"].shape[0])
    scores = {
        "manifest": meta["manifest"],
        "num_samples": len(meta["lines"]),
        "topk": topk,
        "options": asdict(options),
        "models": meta["models"],
        "hidden_states": hidden_states,
        "layers": list(range(FIRST_SCORED_LAYER, hidden_states)),
        "layer_index": "hidden state i = output of decoder layer i (the last after the final norm); "
                       "0 = token embeddings, saved but not scored (the last prompt token is the same "
                       "template token for every sample there)",
        "pairs": {stage: {key: PAIR_DESCRIPTIONS[stage, key.split(":", 1)[1]] for key in scored[stage]}
                  for stage in ("unembedding", "embedding")},
        **scored,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    scores_path = write_scores_json(scores, out_dir / "scores.json")
    table_path = out_dir / "table7.md"
    table_path.write_text(table7_markdown(scores), encoding="utf-8")
    plots = plot_embedding_stage(scores, out_dir, per_metric=per_metric_plots)
    return AlignmentOutputs(scores, scores_path, table_path, plots, out_dir / FEATURES_DIR)
