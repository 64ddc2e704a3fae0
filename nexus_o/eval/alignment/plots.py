"""Per-layer bar plots of the embedding stage (the paper's Figure 3), PNG through matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nexus_o.eval.alignment.options import METRIC_NAMES
from nexus_o.eval.alignment.results import layer_means, row_label

# Colours follow Figure 3's reading: the baseline grey, ours blue, ours with audio green.
_COLOURS = {"baseline:vision": "#8c8c8c", "ours:vision": "#1f77b4", "ours:vision+audio": "#2ca02c"}


def plot_layers(series: dict[str, list[float]], path: str | Path, *, title: str, ylabel: str,
                layers: list[int] | None = None, labels: dict[str, str] | None = None) -> Path:
    """Grouped bars: one group per hidden layer, one bar per series.

    Args:
        series: pair key -> one value per layer (all the same length).
        path: the PNG to write.
        layers: the hidden-state index of each value, for the x axis (default 0, 1, ...).
        title, ylabel: figure texts.
        labels: legend text per pair key (default: the key).

    Raises:
        ValueError: no series, or series of different lengths.
    """
    # A bare Figure on an Agg canvas: no pyplot, no display, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not series:
        raise ValueError("nothing to plot: no per-layer scores")
    lengths = {len(v) for v in series.values()}
    if len(lengths) != 1:
        raise ValueError(f"every series needs one value per layer; got lengths {sorted(lengths)}")
    count = lengths.pop()
    names = list(range(count)) if layers is None else list(layers)
    if len(names) != count:
        raise ValueError(f"{len(names)} layer names for {count} values per series")
    x = np.arange(count)
    width = 0.8 / len(series)
    fig = Figure(figsize=(max(6.0, 0.45 * count * len(series) + 2), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (key, values) in enumerate(series.items()):
        heights = np.asarray(values, dtype=float)  # NaN bars are simply not drawn
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width,
               label=(labels or {}).get(key, key), color=_COLOURS.get(key))
    ax.set_xticks(x, [str(n) for n in names])
    ax.set_xlabel("hidden layer (output of decoder layer i)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    # Below the axes, so that no bar is hidden behind the legend.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(len(series), 3), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_embedding_stage(scores: dict, out_dir: str | Path, per_metric: bool = False) -> list[Path]:
    """``layers.png`` (mean of the seven metrics per layer) and, with ``per_metric``,
    ``layers_<metric>.png`` for each metric; returns the files written."""
    out_dir = Path(out_dir)
    per_pair = scores["embedding"]
    labels = {key: _legend(key, scores["models"]) for key in per_pair}
    written = [plot_layers({k: layer_means(v) for k, v in per_pair.items()}, out_dir / "layers.png",
                           title="Vision-language alignment per hidden layer (mean of the seven metrics)",
                           ylabel="mean of the seven metrics", layers=scores["layers"], labels=labels)]
    if per_metric:
        for name in METRIC_NAMES:
            series = {k: [layer[name] for layer in v] for k, v in per_pair.items()}
            written.append(plot_layers(series, out_dir / f"layers_{name}.png", title=f"{name} per hidden layer",
                                       ylabel=name, layers=scores["layers"], labels=labels))
    return written


def _legend(key: str, models: dict[str, str]) -> str:
    side = key.split(":", 1)[1]
    return row_label(key, models) if side != "vision" else f"{row_label(key, models)} vision"
