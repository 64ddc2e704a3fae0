"""Which feature pairs are scored, and how their scores are written: scores.json and Table 7.

Pair keys read ``<model>:<side>``, where ``<model>`` is ``ours`` or ``baseline`` and ``<side>``
is what is compared with that model's caption-text features:

- ``vision``: the image alone;
- ``vision+audio``: the image with its spoken caption (unembedding stage: the vision and audio
  means concatenated, [N, 2H]; embedding stage: one prompt holding both);
- ``audio``: the spoken caption alone (unembedding stage only; an extra row, not in the paper).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from rich.table import Table

from nexus_o.eval.alignment.extract import ModelFeatures
from nexus_o.eval.alignment.options import METRIC_NAMES

MODEL_ORDER = ("baseline", "ours")
# Hidden-state index 0 (token embeddings) is extracted and saved but not scored: there the last
# prompt token is the same template token for every sample, so its state says nothing about
# the sample (its kernel is constant, and cka is 0/0).
FIRST_SCORED_LAYER = 1
EXTRA_SIDES = ("audio",)  # scored and shown, but left out of Table 7's best/second marks

PAIR_DESCRIPTIONS = {
    ("unembedding", "vision"): "mean merged vision token vs mean caption token embedding",
    ("unembedding", "vision+audio"): "[mean vision token, mean audio token] concatenated vs mean caption token "
                                     "embedding",
    ("unembedding", "audio"): "mean audio-adapter token of the spoken caption vs mean caption token embedding",
    ("embedding", "vision"): "last prompt token (image only) vs last caption token, same layer",
    ("embedding", "vision+audio"): "last prompt token (image + spoken caption) vs last caption token, same layer",
}


def feature_pairs(features: dict[str, ModelFeatures]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The (A, B) arrays of every scored pair: ``{stage: {"<model>:<side>": (A, B)}}``.

    Unembedding pairs are [N, D_a] vs [N, D_b]; embedding pairs [L, N, H] vs [L, N, H]: hidden
    states 1..L (from :data:`FIRST_SCORED_LAYER`), layer l of A against layer l of B.
    """
    pairs: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"unembedding": {}, "embedding": {}}
    for model in sorted(features, key=lambda m: (MODEL_ORDER + (m,)).index(m)):
        unemb, emb = features[model].unembedding, features[model].embedding
        pairs["unembedding"][f"{model}:vision"] = (unemb["vision"], unemb["text"])
        if "audio" in unemb:
            both = np.concatenate([unemb["vision"], unemb["audio"]], axis=-1)
            pairs["unembedding"][f"{model}:vision+audio"] = (both, unemb["text"])
            pairs["unembedding"][f"{model}:audio"] = (unemb["audio"], unemb["text"])
        first = FIRST_SCORED_LAYER
        pairs["embedding"][f"{model}:vision"] = (emb["vision"][first:], emb["text"][first:])
        if "vision_audio" in emb:
            pairs["embedding"][f"{model}:vision+audio"] = (emb["vision_audio"][first:], emb["text"][first:])
    return pairs


def layer_means(per_layer: list[dict[str, float]]) -> list[float]:
    """Figure 3's bar heights: the plain mean of the seven metrics at each layer.

    The metrics keep their own scales (lcs_knn is not divided by k and can exceed 1), as the
    paper's averaged score does.
    """
    return [float(np.mean([layer[name] for name in METRIC_NAMES])) for layer in per_layer]


def _finite(value):
    """NaN/inf -> None, recursively, so the file stays valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_scores_json(scores: dict, path: str | Path) -> Path:
    """Write the scores (see ``run_alignment``) as indented JSON; non-finite values become null."""
    path = Path(path)
    path.write_text(json.dumps(_finite(scores), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def row_label(key: str, models: dict[str, str]) -> str:
    """Table 7's row name of a pair key, as the paper names its rows."""
    model, side = key.split(":", 1)
    name = models.get(model, model)
    return {"vision": f"{name}", "vision+audio": f"{name} vision+audio", "audio": f"{name} audio (extra)"}[side]


def _marks(rows: dict[str, dict[str, float]]) -> dict[tuple[str, str], str]:
    """(row, metric) -> "best" / "second" among the paper's rows (higher is better for all seven)."""
    marks = {}
    ranked = [k for k in rows if k.split(":", 1)[1] not in EXTRA_SIDES]
    for name in METRIC_NAMES:
        values = sorted({rows[k][name] for k in ranked if math.isfinite(rows[k][name])}, reverse=True)
        for key in ranked:
            if len(ranked) > 1 and values and rows[key][name] == values[0]:
                marks[key, name] = "best"
            elif len(values) > 1 and rows[key][name] == values[1]:
                marks[key, name] = "second"
    return marks


def table7_markdown(scores: dict) -> str:
    """Table 7 as Markdown: rows = model variants, columns = the seven metrics in the paper's order.

    The best value of each column is bold and the second underlined, as in the paper (ties share
    a mark; extra rows are not ranked).
    """
    rows, models = scores["unembedding"], scores["models"]
    marks = _marks(rows)
    lines = ["| model | " + " | ".join(METRIC_NAMES) + " |", "|---|" + "---:|" * len(METRIC_NAMES)]
    for key, values in rows.items():
        cells = []
        for name in METRIC_NAMES:
            text = f"{values[name]:.5f}" if math.isfinite(values[name]) else "n/a"
            mark = marks.get((key, name))
            cells.append(f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text)
        lines.append(f"| {row_label(key, models)} | " + " | ".join(cells) + " |")
    note = (f"Unembedding stage: per-sample mean token embeddings, {scores['num_samples']} samples of "
            f"{scores['manifest']}, topk={scores['topk']}. vision+audio = the vision and audio means "
            "concatenated. Higher is better in every column; bold = best, underlined = second.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def table7_rich(scores: dict) -> Table:
    """The same table for the terminal."""
    table = Table(title=f"Unembedding-stage alignment (Table 7), topk={scores['topk']}")
    table.add_column("model")
    for name in METRIC_NAMES:
        table.add_column(name, justify="right")
    for key, values in scores["unembedding"].items():
        table.add_row(row_label(key, scores["models"]), *(f"{values[name]:.5f}" for name in METRIC_NAMES))
    return table
