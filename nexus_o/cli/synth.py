"""`nexus-o synth filter|run|tiny-world`: audio data synthesis."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


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


def synth_run(
    config: Path = typer.Option(..., "--config", "-c", help="A synthesis config (YAML), e.g. configs/synth/text_to_speech.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. shard_size=32 verify=null."),
    engine: Optional[str] = typer.Option(None, "--engine", help="local (process pool on all cores) | ray (Ray Data)."),
) -> None:
    """Sharded, resumable synthesis (the issue's `nexus-o synth --config FILE`): text -> speech or speech -> text.

    Writes manifest.jsonl, rejects.jsonl, review.jsonl and summary.json under the config's
    output_dir. A killed run, started again with the same command, skips finished shards.
    """
    from nexus_o.config.loader import ConfigError, load_config
    from nexus_o.synth.config import SynthRunConfig
    from nexus_o.synth.pipeline import run_synthesis
    from nexus_o.synth.runner import RunMismatchError
    from nexus_o.speech.tts import BackendUnavailableError

    try:
        cfg = load_config(SynthRunConfig, config, [*(overrides or []), *([f"engine={engine}"] if engine else [])])
        summary = run_synthesis(cfg)
    except (ConfigError, RunMismatchError, FileNotFoundError, BackendUnavailableError, ImportError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(summary.format())


def synth_tiny_world(
    out: Path = typer.Option(..., "--out", help="Folder to build the world in (an unfinished build there is resumed)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the config's, 0)."),
    size: str = typer.Option("default", "--size", help="small (tests, seconds) | default (the main job's data)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Tiny-world YAML applied over the size preset."),
    engine: Optional[str] = typer.Option(None, "--engine", help="local | ray."),
) -> None:
    """Generate the tiny tri-modal world: images, spoken words and questions, joe's answers, manifests."""
    from nexus_o.config.loader import ConfigError
    from nexus_o.synth.config import tiny_world_config
    from nexus_o.synth.runner import RunMismatchError
    from nexus_o.synth.tiny_world import build_world

    overrides = [*([f"seed={seed}"] if seed is not None else []), *([f"engine={engine}"] if engine else [])]
    try:
        cfg = tiny_world_config(size, config, overrides)
        report = build_world(out, cfg)
    except (ConfigError, RunMismatchError, FileNotFoundError, ImportError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    for name, lines in report["manifests"].items():
        typer.echo(f"{lines:6d}  {out / name}")
    for backend, voices in report["verification"].items():
        for voice, r in voices.items():
            typer.echo(f"ASR round trip {backend} / {voice}: {r['passed']}/{r['checked']} passed")
    typer.echo(f"{report['clips']['written']} clips, {report['clips']['audio_hours']:.3f} h of audio, "
               f"{report['seconds']['total']:.1f} s ({report['clips_per_second']} clips/s)")
