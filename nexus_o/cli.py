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


@app.command()
def version() -> None:
    """Print the nexus-o version."""
    from nexus_o import __version__

    typer.echo(__version__)


@app.command("convert-whisper")
def convert_whisper(
    src: str = typer.Argument(..., help="CTranslate2 Whisper folder, or whisper-base / whisper-tiny.en."),
    out: Path = typer.Argument(..., help="Output Hugging Face folder (replaced if it exists)."),
    full: bool = typer.Option(False, "--full", help="Convert the decoder too (whole model + tokenizer)."),
) -> None:
    """Convert CTranslate2 Whisper weights (faster-whisper's) into transformers' Whisper format."""
    from nexus_o.models.ct2_whisper import convert_ct2_whisper, ct2_source

    try:
        folder = convert_ct2_whisper(ct2_source(src), out, encoder_only=not full)
    except (ValueError, FileNotFoundError) as err:  # CT2FormatError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"wrote {'WhisperForConditionalGeneration' if full else 'Whisper encoder'} to {folder}")


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


@codec_app.command("roundtrip")
def codec_roundtrip(
    in_wav: Path = typer.Argument(..., help="Input audio (any rate; channels are averaged)."),
    out_wav: Path = typer.Argument(..., help="Where to write the decoded audio (at the codec's rate)."),
    codec: str = typer.Option("builtin", "--codec", help="Codec name (builtin, firefly) or a saved codec folder."),
) -> None:
    """Encode IN_WAV to codes, decode them back and write OUT_WAV."""
    from nexus_o.codecs.tools import roundtrip_file

    try:
        report = roundtrip_file(in_wav, out_wav, codec)
    except (ValueError, FileNotFoundError) as err:  # CodecError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(
        f"{report.frames} frames x {report.codebooks} codebooks at {report.frame_rate:.2f} frames/s; "
        f"{report.input_seconds:.2f} s in, {report.output_seconds:.2f} s out ({report.sample_rate} Hz) -> {out_wav}"
    )


@codec_app.command("fit")
def codec_fit(
    audio: Path = typer.Option(..., "--audio", help="Folder of audio files or a JSONL manifest (audios/audio fields)."),
    out: Path = typer.Option(..., "--out", help="Folder to save the fitted built-in codec in."),
    codebooks: int = typer.Option(8, "--codebooks", help="Residual codebooks K."),
    size: int = typer.Option(512, "--size", help="Entries per codebook."),
    iters: int = typer.Option(10, "--iters", help="Lloyd iterations per codebook."),
    seed: int = typer.Option(0, "--seed", help="Random seed (k-means++ and frame sampling)."),
) -> None:
    """Fit the built-in codec's residual codebooks on speech and save the codec."""
    from nexus_o.codecs.tools import fit_codec_from_source

    try:
        codec, files = fit_codec_from_source(audio, out, codebooks, size, iters, seed)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"fitted {codec.num_codebooks} x {codec.codebook_size} codebooks on {files} files -> {out}")


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
