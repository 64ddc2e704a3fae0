"""Loading and checking audio, images, video and speech codes referenced by manifests.

References are absolute paths or ``data:`` URIs (base64). Audio is read by the package's one
reader, ``processing.media_decoding.load_audio`` (soundfile, then PyAV; mono and soxr resampling
on request). Images go through PIL, video through PyAV.
Every failure raises ``MediaError`` naming the field and the file.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from nexus_o.data.schema import Sample

MediaCheck = Literal["none", "exists", "decode"]
"""How hard to look at media: not at all; files exist and audio headers read; everything decodes."""


from nexus_o.processing.media_decoding import (  # noqa: E402  (one error type, one reader each)
    MediaError, load_audio, sample_video_frames)


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    frames: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class MediaStats:
    """Durations found while checking one sample (0 where not measured)."""

    audio_seconds: float = 0.0
    speech_seconds: float = 0.0


def open_source(ref: str) -> str | io.BytesIO:
    """A path, or an in-memory file for a base64 ``data:`` URI."""
    if not ref.startswith("data:"):
        return ref
    header, _, payload = ref.partition(",")
    if not header.endswith(";base64"):
        raise MediaError(f"data URI {header[:40]!r}... must be base64-encoded")
    return io.BytesIO(base64.b64decode(payload))


def _require_file(ref: str) -> None:
    if ref.startswith("data:") or os.path.isfile(ref):
        return
    if os.path.isdir(ref):
        raise MediaError(f"is a directory, not a file: {ref}")
    raise MediaError(f"file not found: {ref}")


def _short(ref: str) -> str:
    return ref if not ref.startswith("data:") else ref[:32] + "..."


# ----------------------------------------------------------------------------- audio

def probe_audio(ref: str) -> AudioInfo:
    """Sample rate, length and channels from the file header (no full decode where libsndfile reads it)."""
    import soundfile as sf

    _require_file(ref)
    try:
        info = sf.info(open_source(ref))
        return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass  # not a libsndfile format: decode it (FFmpeg)
    return check_audio(ref)


def check_audio(ref: str) -> AudioInfo:
    """Fully decode an audio file; empty or non-finite audio is an error."""
    _require_file(ref)
    wav, rate = load_audio(ref, mono=False, name=_short(ref))
    return AudioInfo(rate, wav.shape[1], wav.shape[0])


def _probe_nonempty(ref: str) -> AudioInfo:
    info = probe_audio(ref)
    if info.frames == 0:
        raise MediaError(f"audio has 0 samples: {_short(ref)}")
    return info


# ----------------------------------------------------------------------------- images

def load_image(ref: str) -> "Image.Image":
    """Decode an image to RGB, applying the EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    _require_file(ref)
    try:
        with Image.open(open_source(ref)) as img:
            return ImageOps.exif_transpose(img).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise MediaError(f"image does not decode: {_short(ref)} ({err})") from None


def check_image(ref: str) -> tuple[int, int]:
    """Verify the container (checksums) then decode the pixels; returns ``(width, height)``."""
    from PIL import Image, UnidentifiedImageError

    _require_file(ref)
    try:
        with Image.open(open_source(ref)) as img:
            img.verify()  # structure and CRCs; the image cannot be used after this, so reopen
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise MediaError(f"image does not decode: {_short(ref)} ({err})") from None
    img = load_image(ref)
    if min(img.size) == 0:
        raise MediaError(f"image is empty ({img.size[0]}x{img.size[1]}): {_short(ref)}")
    return img.size


# ----------------------------------------------------------------------------- video

def check_video(ref: str) -> tuple[int, int]:
    """Decode the first video frame; returns ``(width, height)``."""
    import av

    _require_file(ref)
    try:
        with av.open(open_source(ref)) as container:
            if not container.streams.video:
                raise MediaError(f"no video stream in {_short(ref)}")
            for frame in container.decode(video=0):
                return frame.width, frame.height
    except av.FFmpegError as err:
        raise MediaError(f"video does not decode: {_short(ref)} ({err.strerror or err})") from None
    raise MediaError(f"video has no decodable frame: {_short(ref)}")


def load_video(ref: str, fps: float = 2.0, max_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sample frames at ``fps`` frames a second (fewer when ``max_frames`` would be passed).

    Returns ``(frames, times)``: ``frames`` uint8 ``[N, H, W, 3]`` RGB, ``times`` float ``[N]``
    seconds. Long videos are sampled more sparsely, never cut: all of the video stays covered.
    """
    _require_file(ref)
    return sample_video_frames(open_source(ref), fps, max_frames, _short(ref))


# ----------------------------------------------------------------------------- speech codes

def load_codes(codes: str | list[list[int]]) -> np.ndarray:
    """Speech codes as int64 ``[K, T]`` from a .npy file (never unpickled) or inline lists."""
    if not isinstance(codes, str):
        return np.asarray(codes, dtype=np.int64)
    _require_file(codes)
    try:
        arr = np.load(open_source(codes), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise MediaError(f"codes file does not load: {_short(codes)} ({err})") from None
    if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise MediaError(f"codes must be a non-empty integer array [K, T], got {arr.dtype} {arr.shape}: {codes}")
    if (arr < 0).any():
        raise MediaError(f"codes hold negative ids: {codes}")
    return arr.astype(np.int64, copy=False)


# ----------------------------------------------------------------------------- whole sample

def check_sample_media(sample: "Sample", level: MediaCheck) -> MediaStats:
    """Check every file a sample references at ``level``; returns the audio durations found.

    Raises ``MediaError`` whose message names the field (``audios[1]``, ``speech.audio``, ...).
    """
    if level == "none":
        return MediaStats()
    if level not in ("exists", "decode"):
        raise ValueError(f"media check must be 'none', 'exists' or 'decode', got {level!r}")
    decode = level == "decode"
    audio_check = check_audio if decode else _probe_nonempty

    def run(name: str, fn, ref: str):
        try:
            return fn(ref)
        except MediaError as err:
            raise MediaError(f"{name}: {err}") from None

    audio_seconds = sum(run(f"audios[{i}]", audio_check, r).seconds for i, r in enumerate(sample.audios))
    for i, ref in enumerate(sample.images):
        run(f"images[{i}]", check_image if decode else _require_file, ref)
    for i, ref in enumerate(sample.videos):
        run(f"videos[{i}]", check_video if decode else _require_file, ref)
    if sample.reference_audio is not None:
        run("reference_audio", audio_check, sample.reference_audio)
    speech_seconds = 0.0
    if sample.speech is not None and sample.speech.audio is not None:
        speech_seconds = run("speech.audio", audio_check, sample.speech.audio).seconds
    elif sample.speech is not None and isinstance(sample.speech.codes, str):
        run("speech.codes", load_codes if decode else _require_file, sample.speech.codes)
    return MediaStats(audio_seconds=audio_seconds, speech_seconds=speech_seconds)
