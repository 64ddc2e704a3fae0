"""Server settings: every limit of the HTTP server in one strict, serialisable config.

Load from YAML with `nexus_o.config.loader.load_config(ServeSettings, path, overrides)` or build
in Python; `nexus-o serve` exposes the common ones as flags. Unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from nexus_o.config.loader import StrictModel
from nexus_o.config.loader import ConfigError, load_config

MB = 1024 * 1024


class ServeSettings(StrictModel):
    """Limits and options of `nexus_o.serve.app.create_app`.

    model_name: the id clients pass as `model` (and `GET /v1/models` lists).
    max_body_bytes: request bodies above this are refused with 413 before any parsing.
    body_read_timeout: seconds a client may take to send its body (else 408).
    max_media_parts: image/audio/video parts per request, all messages together.
    max_image_pixels: width * height of an image or a video frame; larger ones are refused
        from their header, before decoding (decompression bombs).
    max_audio_seconds / max_video_seconds / max_video_frames: per clip.
    allow_local_media: a folder whose files `file://` URLs (or plain paths) may name; None
        refuses local files. http(s) URLs are always refused: the server never fetches.
    max_queue: requests waiting for the model (the one running is not counted); more: 429.
    max_batch: text requests waiting together decode as one batch of at most this many (1: one
        at a time); requests that speak always run alone.
    batch_window: seconds the model waits for more text requests once it has taken one and its
        batch is not full (adds at most this to the time to first token).
    max_queue_wait: seconds a request may wait for the model to start on it; past it: 503.
    request_timeout: seconds from arrival to the end of the reply; past it: 504 (and the model
        stops at its next step).
    max_prompt_tokens: cap on the prompt's tokens (media placeholders included), checked before
        any model work (400); None: the model's context only.
    max_tokens: cap on generated text tokens (a request's max_tokens may only lower it; without
        one, a reply gets what the context leaves after the prompt, up to this cap).
    max_speech_seconds: cap on the spoken reply.
    audio_ttl_seconds: how long a reply's audio id resolves to its transcript in later turns.
    demo_examples: a tiny-world folder (its test_vqa.jsonl) whose test images and questions the
        web demo offers; None: the one beside the checkpoint, if any (`serve.examples.find_world`).
    """

    model_name: str = "nexus-o"
    max_body_bytes: int = Field(25 * MB, gt=0)
    body_read_timeout: float = Field(30.0, gt=0)
    max_media_parts: int = Field(8, ge=0)
    max_image_pixels: int = Field(20_000_000, gt=0)
    max_audio_seconds: float = Field(120.0, gt=0)
    max_video_seconds: float = Field(60.0, gt=0)
    max_video_frames: int = Field(1800, gt=0)
    allow_local_media: Path | None = None
    max_queue: int = Field(16, ge=0)
    max_batch: int = Field(8, ge=1)
    batch_window: float = Field(0.005, ge=0, le=1)
    max_queue_wait: float = Field(60.0, gt=0)
    request_timeout: float = Field(120.0, gt=0)
    max_prompt_tokens: int | None = Field(None, gt=0)
    max_tokens: int = Field(512, gt=0)
    max_speech_seconds: float = Field(30.0, gt=0)
    audio_ttl_seconds: int = Field(3600, gt=0)
    demo_examples: Path | None = None


def load_settings(config: str | Path | None = None, **values) -> ServeSettings:
    """Settings from an optional YAML file, with `values` on top (None values are skipped).

    Raises `nexus_o.config.loader.ConfigError` naming the file and field on a bad value.
    """
    from pydantic import ValidationError

    base = load_config(ServeSettings, config) if config is not None else ServeSettings()
    given = {key: value for key, value in values.items() if value is not None}
    try:
        return ServeSettings.model_validate({**base.model_dump(), **given})
    except ValidationError as err:
        raise ConfigError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())) from None
