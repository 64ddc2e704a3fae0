"""`nexus-o serve`, `nexus-o demo` and `nexus-o chat`: talk to a model over HTTP, in a browser or a terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def serve(
    model: str = typer.Option(..., "--model", "-m", help="A checkpoint folder, or the preset name 'tiny'."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="ServeSettings YAML (flags override it)."),
    model_name: Optional[str] = typer.Option(None, help="Model id clients pass (default: the preset/folder name)."),
    allow_local_media: Optional[Path] = typer.Option(None, help="Folder whose files file:// media URLs may name."),
    max_body_mb: Optional[float] = typer.Option(None, help="Request body limit in MB (default 25)."),
    max_audio_seconds: Optional[float] = typer.Option(None, help="Longest audio input (default 120)."),
    max_image_pixels: Optional[int] = typer.Option(None, help="Largest image, width*height (default 20M)."),
    max_media_parts: Optional[int] = typer.Option(None, help="Media parts per request (default 8)."),
    max_queue: Optional[int] = typer.Option(None, help="Requests waiting for the model before 429 (default 16)."),
    max_batch: Optional[int] = typer.Option(None, help="Text requests waiting together decode as one batch of at "
                                                       "most this many (default 8; 1: one at a time)."),
    max_queue_wait: Optional[float] = typer.Option(None, help="Seconds a request may wait for the model before "
                                                              "503 (default 60)."),
    timeout: Optional[float] = typer.Option(None, help="Seconds per request before 504 (default 120)."),
    max_prompt_tokens: Optional[int] = typer.Option(None, help="Cap on prompt tokens, media included (default: "
                                                               "the model's context)."),
    max_tokens: Optional[int] = typer.Option(None, help="Cap on reply tokens (default 512)."),
    max_speech_seconds: Optional[float] = typer.Option(None, help="Cap on spoken replies (default 30)."),
    examples: Optional[Path] = typer.Option(None, help="Tiny-world folder whose test images and questions the demo "
                                                       "offers (default: the one beside the checkpoint, if any)."),
) -> None:
    """Serve a model with an OpenAI-compatible API (POST /v1/chat/completions) and the web demo (/demo)."""
    from nexus_o.config.loader import ConfigError
    from nexus_o.serve.server import run_server
    from nexus_o.serve.settings import load_settings

    try:
        settings = load_settings(
            config, model_name=model_name or Path(model).name, allow_local_media=allow_local_media,
            max_body_bytes=int(max_body_mb * 1024 * 1024) if max_body_mb else None,
            max_audio_seconds=max_audio_seconds, max_image_pixels=max_image_pixels, max_media_parts=max_media_parts,
            max_queue=max_queue, max_batch=max_batch, max_queue_wait=max_queue_wait, request_timeout=timeout,
            max_prompt_tokens=max_prompt_tokens, max_tokens=max_tokens, max_speech_seconds=max_speech_seconds,
            demo_examples=examples)
        run_server(model, settings, host=host, port=port,
                   banner=f"serving {settings.model_name!r} on http://{host}:{port}/v1 (demo: http://{host}:{port}/demo)")
    except (ConfigError, ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err


def demo(
    model: str = typer.Option(..., "--model", "-m", help="A checkpoint folder, or the preset name 'tiny'."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(7860, help="Port to listen on."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="ServeSettings YAML."),
    examples: Optional[Path] = typer.Option(None, help="Tiny-world folder whose test images and questions the demo "
                                                       "offers (default: the one beside the checkpoint, if any)."),
) -> None:
    """Start the web demo (chat with text, images, microphone or audio files; spoken replies) at /demo."""
    from nexus_o.config.loader import ConfigError
    from nexus_o.serve.server import run_server
    from nexus_o.serve.settings import load_settings

    try:
        settings = load_settings(config, model_name=Path(model).name, demo_examples=examples)
        run_server(model, settings, host=host, port=port, banner=f"open http://{host}:{port}/demo in a browser")
    except (ConfigError, ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err


def chat(
    model: str = typer.Option(..., "--model", "-m", help="A checkpoint folder, or the preset name 'tiny'."),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="The message (one turn)."),
    image: Optional[list[Path]] = typer.Option(None, "--image", help="Image file(s) to send."),
    audio: Optional[list[Path]] = typer.Option(None, "--audio", help="Audio file(s) to send."),
    video: Optional[list[Path]] = typer.Option(None, "--video", help="Video file(s) to send."),
    speak: Optional[Path] = typer.Option(None, "--speak", help="Write the spoken reply to this WAV file."),
) -> None:
    """Chat in the terminal: one turn with --text/--image/--audio/--video, else an interactive session."""
    from nexus_o.serve.terminal import run_chat

    try:
        run_chat(model, text, image or [], audio or [], video or [], speak)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
