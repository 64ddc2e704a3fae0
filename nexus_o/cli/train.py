"""`nexus-o quickstart` and `nexus-o train`: the whole pipeline on the tiny world, or one training stage."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), help="Output folder (a killed run resumes from it)."),
    minutes: float = typer.Option(15.0, help="Training budget: the stages' step counts scale with it."),
    seed: int = typer.Option(0, help="Random seed of the world and the model."),
    size: str = typer.Option("default", help="Tiny-world size: default or small."),
    steps: Optional[list[str]] = typer.Option(
        None, help="STAGE=N: train that stage for N steps in all instead of scaling by --minutes "
                   "(stage1_align, stage2_sft, stage3_speech); repeatable."),
) -> None:
    """Run the whole pipeline on the built-in tiny world (CPU): data, codec, 3 stages, eval, answer."""
    from nexus_o.quickstart import STAGES, run_quickstart

    totals = {}
    for spec in steps or []:
        stage, sep, count = (part.strip() for part in spec.partition("="))
        if not sep or stage not in STAGES or not count.isdigit() or int(count) < 1:
            typer.echo(f"error: --steps {spec!r}: expected STAGE=N with N >= 1 and STAGE one of "
                       f"{', '.join(STAGES)}", err=True)
            raise typer.Exit(2)
        totals[stage] = int(count)
    run_quickstart(out, minutes=minutes, seed=seed, size=size, steps=totals)


def train(
    config: Path = typer.Option(..., "--config", "-c", help="A stage config (YAML), e.g. configs/tiny/stage1_align.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. optim.lr=1e-4."),
) -> None:
    """Train one stage (stage1_align, stage2_sft or stage3_speech) as its config says."""
    from nexus_o.config.loader import ConfigError, load_config
    from nexus_o.train.config import TrainConfig
    from nexus_o.train.run import run_training

    try:
        cfg = load_config(TrainConfig, config, overrides or [])
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    run_training(cfg)
