"""`nexus-o codec roundtrip|fit` and `nexus-o convert-whisper`: codecs and speech weights."""

from __future__ import annotations

from pathlib import Path

import typer


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


def convert_whisper(
    src: str = typer.Argument(..., help="CTranslate2 Whisper folder, or whisper-base / whisper-tiny.en."),
    out: Path = typer.Argument(..., help="Output Hugging Face folder (replaced if it exists)."),
    full: bool = typer.Option(False, "--full", help="Convert the decoder too (whole model + tokenizer)."),
) -> None:
    """Convert CTranslate2 Whisper weights (faster-whisper's) into transformers' Whisper format."""
    from nexus_o.bundle.ct2_whisper import convert_ct2_whisper, ct2_source

    try:
        folder = convert_ct2_whisper(ct2_source(src), out, encoder_only=not full)
    except (ValueError, FileNotFoundError) as err:  # CT2FormatError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"wrote {'WhisperForConditionalGeneration' if full else 'Whisper encoder'} to {folder}")
