"""`nexus-o data validate`: check a training manifest."""

from __future__ import annotations

from pathlib import Path

import typer


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
