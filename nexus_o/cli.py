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
def version() -> None:
    """Print the nexus-o version."""
    from nexus_o import __version__

    typer.echo(__version__)


if __name__ == "__main__":
    app()
