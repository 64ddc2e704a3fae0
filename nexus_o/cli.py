"""`nexus-o <command>`: one plain typed function per command.

Imports of heavy modules stay inside the commands so that `nexus-o --help` is instant.
Command groups (`codec`, `data`, `synth`, `align`) are typer sub-apps; each command is a
thin wrapper over a library function that does the work and can be called from Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="NEXUS-O omni-modal pipeline.")
codec_app = typer.Typer(no_args_is_help=True, help="Speech codecs: round trips and fitting.")
data_app = typer.Typer(no_args_is_help=True, help="Training manifests.")
synth_app = typer.Typer(no_args_is_help=True, help="Audio data synthesis.")
align_app = typer.Typer(no_args_is_help=True, help="Representational alignment analysis.")
app.add_typer(codec_app, name="codec")
app.add_typer(data_app, name="data")
app.add_typer(synth_app, name="synth")
app.add_typer(align_app, name="align")


@app.command()
def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), help="Output folder."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Run the whole pipeline on the built-in tiny world (CPU)."""
    from nexus_o.quickstart import run_quickstart

    run_quickstart(out, seed=seed)


@app.command()
def version() -> None:
    """Print the nexus-o version."""
    from nexus_o import __version__

    typer.echo(__version__)


@app.command()
def score(
    metric: str = typer.Argument(..., help="wer | cer | bleu | sqa"),
    refs: Path = typer.Option(
        ..., help="References, one a line (sqa: answers split by ' | ' or a JSON list)."
    ),
    hyps: Path = typer.Option(..., help="Hypotheses / model outputs, one a line."),
    lang: Optional[str] = typer.Option(
        None, help="en | zh (wer is en, cer is zh; bleu: target language)."
    ),
    protocol: str = typer.Option(
        "default", help="default (corpus) | seed-tts (mean per utterance; wer/cer)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the score and its counts as JSON."),
) -> None:
    """Score hypotheses against references with the field's normalisers (SPEC §4)."""
    import json

    from nexus_o.eval.metrics import score_files

    try:
        result = score_files(metric, refs, hyps, lang=lang, protocol=protocol)
    except (ValueError, FileNotFoundError) as err:  # MetricInputError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(json.dumps(result.to_dict(), ensure_ascii=False) if json_out else result.summary())


@data_app.command("validate")
def data_validate(
    manifest: Path = typer.Argument(..., help="JSONL manifest to check."),
    no_media: bool = typer.Option(False, "--no-media", help="Check JSON and schema only, not the media files."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check every manifest line (schema, tag counts, media decode); exit 1 if any line is bad."""
    import json

    from nexus_o.data.manifest import validate_manifest

    try:
        report = validate_manifest(manifest, check_media=not no_media, progress=not json_out)
    except FileNotFoundError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if json_out else report.format())
    raise typer.Exit(code=0 if report.ok else 1)


@synth_app.command("filter")
def synth_filter(
    texts: Path = typer.Argument(..., help="Text file, one text a line (UTF-8)."),
    out: Path = typer.Option(..., help="JSONL of kept texts: {line, text}."),
    rejects: Path = typer.Option(..., help="JSONL of rejected lines: {line, text, reason}."),
) -> None:
    """Apply the paper's text filters (length, non-text ratio, URL, path, LaTeX; SPEC §3)."""
    from nexus_o.synth.filters import filter_file

    try:
        summary = filter_file(texts, out, rejects)
    except FileNotFoundError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"read {summary.total}  kept {summary.kept}")
    for reason, count in sorted(summary.rejected.items()):
        typer.echo(f"rejected {reason}: {count}")


@align_app.command("score")
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


if __name__ == "__main__":
    app()
