"""`nexus-o eval` (benchmark manifests or the paper's suite) and `nexus-o score` (metric on two text files)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def evaluate(
    model: str = typer.Option(..., "--model", help="A checkpoint folder or a preset name (tiny)."),
    tasks: Optional[str] = typer.Option(None, "--tasks",
                                        help="Comma-separated tasks (asr, s2tt, sqa, tts, vqa; default all), each read "
                                             "from DATA/<task>.jsonl, or task=PATH pairs."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding the <task>.jsonl benchmark manifests."),
    out: Path = typer.Option(..., "--out", help="Output folder: predictions/ (resumable cache), results.json, results.md."),
    suite: Optional[str] = typer.Option(None, "--suite", help="'paper': every benchmark of the paper's tables found "
                                                              "under --data-root (docs/eval-suite.md)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Suite: the folder holding the benchmarks."),
    benchmarks: Optional[str] = typer.Option(None, "--benchmarks", help="Suite: a comma-separated subset of benchmarks."),
    whisper_large_v3: Optional[Path] = typer.Option(None, "--whisper-large-v3",
                                                    help="Suite: Whisper-large-v3 folder, Seed-TTS's English judge."),
    paraformer_zh: Optional[Path] = typer.Option(None, "--paraformer-zh",
                                                 help="Suite: FunASR Paraformer-zh folder, Seed-TTS's Chinese judge."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Items per generation batch."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate the first N items of each task."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1,
                                                 help="Reply length limit in tokens (default 64; suite: 256)."),
    asr_backend: str = typer.Option("whisper-tiny.en", "--asr-backend", help="ASR that transcribes the model's speech (tts)."),
) -> None:
    """Evaluate a model on benchmark manifests, or run the paper's suite, and report beside the paper (SPEC §4)."""
    from rich.console import Console

    try:
        if suite is not None:
            _eval_suite(model, out, suite, data_root, benchmarks, whisper_large_v3, paraformer_zh, batch_size, limit,
                        max_new_tokens or 256, tasks_or_data=(tasks, data))
            return
        if data_root is not None or benchmarks or whisper_large_v3 or paraformer_zh:
            raise ValueError("--data-root, --benchmarks, --whisper-large-v3 and --paraformer-zh belong to --suite paper")
        from nexus_o.eval.report import console_table
        from nexus_o.eval.runner import run_eval

        results = run_eval(model, tasks or "asr,s2tt,sqa,tts,vqa", data, out, batch_size=batch_size, limit=limit,
                           max_new_tokens=max_new_tokens or 64, asr_backend=asr_backend)
    except (ValueError, FileNotFoundError) as err:  # EvalError, ManifestError are ValueErrors
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    Console().print(console_table(results))
    typer.echo(f"wrote {out / 'results.json'} and {out / 'results.md'}")


def _eval_suite(model, out, suite, data_root, benchmarks, whisper_large_v3, paraformer_zh, batch_size, limit,
                max_new_tokens, tasks_or_data) -> None:
    from rich.console import Console
    from rich.table import Table

    from nexus_o.eval.suite.report import summary_rows
    from nexus_o.eval.suite.run import run_suite

    if suite != "paper":
        raise ValueError(f"unknown suite {suite!r}; expected 'paper'")
    if any(v is not None for v in tasks_or_data):
        raise ValueError("--tasks and --data do not apply to --suite paper (it finds its benchmarks under --data-root)")
    if data_root is None:
        raise ValueError("--suite paper needs --data-root DIR (layout in docs/eval-suite.md)")
    results = run_suite(model, data_root, out, whisper_large_v3=whisper_large_v3, paraformer_zh=paraformer_zh,
                        benchmarks=benchmarks, limit=limit, batch_size=batch_size, max_new_tokens=max_new_tokens)
    table = Table(title=f"nexus-o eval --suite paper: {results['model']}")
    for column in ("benchmark", "this run", "NEXUS-O (paper)", "judge", "status"):
        table.add_column(column, overflow="fold")
    for row in summary_rows(results):
        table.add_row(row[0], row[3], row[4], row[6], row[8])
    Console().print(table)
    typer.echo(f"wrote {out / 'suite.json'} and {out / 'suite.md'}")


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
        "default",
        help="default (corpus) | seed-tts (mean per utterance; wer/cer) | seed-tts-whisper (the same, Whisper's normaliser).",
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
