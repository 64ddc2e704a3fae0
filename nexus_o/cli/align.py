"""`nexus-o align score|run`: representational alignment analysis (paper §4.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def align_score(
    features_a: Path = typer.Argument(..., help="N x D .npy array, one row per sample."),
    features_b: Path = typer.Argument(..., help="N x D .npy array, rows paired with A's."),
    topk: int = typer.Option(10, "--topk", help="Neighbours per sample (k-NN metrics and cknna)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object {metric: value}."),
) -> None:
    """Score the seven representational-alignment metrics of two paired feature files (SPEC §4)."""
    from rich.console import Console

    from nexus_o.eval.alignment import score_files, scores_json, scores_table

    try:
        scores = score_files(features_a, features_b, topk=topk)
    except (ValueError, FileNotFoundError) as err:  # AlignmentInputError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    if json_out:
        typer.echo(scores_json(scores))
    else:
        Console().print(scores_table(scores, title=f"{features_a.name} vs {features_b.name}, topk={topk}"))


def align_run(
    out: Path = typer.Option(..., "--out", help="Output folder: scores.json, table7.md, layers.png, features/."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Our checkpoint folder, or the preset 'tiny'."),
    data: Optional[Path] = typer.Option(None, "--data", help="Image-caption(-speech) manifest, see docs/alignment.md."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A Qwen2.5-VL checkpoint folder to compare with."),
    topk: int = typer.Option(10, "--topk", help="Neighbours per sample (k-NN metrics and cknna)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N samples."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Samples per forward pass."),
    device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1, cpu, ... (default: GPU if any)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, bfloat16 or float16 (default: checkpoint's)."),
    per_metric: bool = typer.Option(False, "--per-metric", help="Also plot layers_<metric>.png for each metric."),
    rescore: bool = typer.Option(False, "--rescore", help="Score the features already in OUT/features; load no model."),
) -> None:
    """Vision-language alignment of a model (paper §4.2): Table 7 (unembedding) and Figure 3 (per layer)."""
    from rich.console import Console

    from nexus_o.eval.alignment.results import table7_rich
    from nexus_o.eval.alignment.run import rescore_alignment, run_alignment

    try:
        if rescore:
            result = rescore_alignment(out, topk=topk, device=device, per_metric_plots=per_metric)
        elif model is None or data is None:
            raise ValueError("--model and --data are needed (or --rescore to score saved features again)")
        else:
            result = run_alignment(model, data, out, baseline=baseline, topk=topk, limit=limit, batch_size=batch_size,
                                   device=device, dtype=dtype, per_metric_plots=per_metric)
    except (ValueError, FileNotFoundError) as err:  # ManifestError and AlignmentInputError are ValueErrors
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    Console().print(table7_rich(result.scores))
    for path in [result.scores_json, result.table7, *result.plots]:
        typer.echo(f"wrote {path}")
