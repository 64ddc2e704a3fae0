"""`nexus-o <command>`: one plain typed function per command, one module per command group.

The commands import their heavy modules inside themselves so that `nexus-o --help` is instant.
Each command is a thin wrapper over a library function that does the work and can be called
from Python; `codec`, `data`, `synth` and `align` are typer sub-apps.
"""

from __future__ import annotations

import typer

from nexus_o.cli import align, codec, data, evaluate, serve, synth, train

app = typer.Typer(no_args_is_help=True, add_completion=False, help="NEXUS-O omni-modal pipeline.")


app.command()(train.quickstart)
app.command()(train.train)


@app.command()
def version() -> None:
    """Print the nexus-o version."""
    from nexus_o.version import __version__

    typer.echo(__version__)


app.command("convert-whisper")(codec.convert_whisper)
app.command()(evaluate.score)
app.command("eval")(evaluate.evaluate)
app.command()(serve.serve)
app.command()(serve.demo)
app.command()(serve.chat)


def _group(name: str, help: str, commands: dict) -> None:
    group = typer.Typer(no_args_is_help=True, help=help)
    for command_name, function in commands.items():
        group.command(command_name)(function)
    app.add_typer(group, name=name)


_group("codec", "Speech codecs: round trips and fitting.",
       {"roundtrip": codec.codec_roundtrip, "fit": codec.codec_fit})
_group("data", "Training manifests.", {"validate": data.data_validate})
_group("synth", "Audio data synthesis.",
       {"filter": synth.synth_filter, "run": synth.synth_run, "tiny-world": synth.synth_tiny_world})
_group("align", "Representational alignment analysis.",
       {"score": align.align_score, "run": align.align_run})
