"""Scoring two feature files and presenting the scores (the library side of ``nexus-o align score``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.table import Table

from nexus_o.eval.alignment.inputs import check_paired, load_feature_file
from nexus_o.eval.alignment.options import METRIC_NAMES, MetricOptions
from nexus_o.eval.alignment.score import score_all


def score_files(
    path_a: str | Path, path_b: str | Path, topk: int = 10, options: MetricOptions | None = None
) -> dict[str, float]:
    """All seven metrics between two ``.npy`` files of paired [N, D] features.

    Raises:
        FileNotFoundError: a file is missing.
        AlignmentInputError: a file is not a plain numeric 2-D array, the row counts differ
            (both files and counts are named), values are NaN/inf, or N is too small for topk.
    """
    a, b = load_feature_file(path_a), load_feature_file(path_b)
    check_paired(a, b, str(path_a), str(path_b))
    return score_all(a, b, topk, options)


def scores_json(scores: dict[str, float]) -> str:
    """One JSON object with exactly the metric names as keys; NaN (possible for an unbiased
    HSIC on degenerate data) becomes ``null`` so the output stays valid JSON."""
    return json.dumps({name: (v if math.isfinite(v) else None) for name, v in scores.items()})


def scores_table(scores: dict[str, float], title: str | None = None) -> Table:
    """A two-column rich table (metric, value) in :data:`METRIC_NAMES` order."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in METRIC_NAMES:
        table.add_row(name, f"{scores[name]:.5f}")
    return table
