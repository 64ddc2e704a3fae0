"""Media loading for the processor: audio (resampled to 16 kHz mono), images, video frames.

Sources may be a path (relative paths resolve against `base_dir`), a `data:` URL, raw bytes,
an already decoded object (PIL image, numpy array), or for audio a `(array, sample_rate)` pair or
a `{"array", "sampling_rate"}` dict (the `datasets` Audio format). Errors name the source.
Video is decoded with PyAV (torchvision does not import beside torch 2.13 here).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SAMPLE_RATE = 16_000


class MediaError(ValueError):
    """A media item could not be read; the message names the source."""


def _describe(src: Any) -> str:
    if isinstance(src, (str, Path)):
        text = str(src)
        return text if len(text) < 80 else text[:60] + "...(data URL)"
    return type(src).__name__


def _read_bytes(src: Any, base_dir: Path | None) -> tuple[bytes | None, Path | None]:
    """Bytes of a data URL / bytes object, or the resolved path of a file source."""
    if isinstance(src, (bytes, bytearray)):
        return bytes(src), None
    if isinstance(src, str) and src.startswith("data:"):
        try:
            return base64.b64decode(src.split(",", 1)[1], validate=False), None
        except (IndexError, ValueError) as err:
            raise MediaError(f"malformed data URL ({_describe(src)}): {err}") from err
    if isinstance(src, (str, Path)):
        path = Path(src.removeprefix("file://") if isinstance(src, str) else src).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if path.is_dir():
            raise MediaError(f"media path is a directory, not a file: {path}")
        if not path.is_file():
            raise MediaError(f"media file not found: {path}")
        return None, path
    return None, None


def resample(wav: np.ndarray, rate: int, target: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Resample float32 audio ``[T]`` or ``[T, channels]`` with soxr (high quality); identity when rates agree."""
    if rate == target or wav.shape[0] == 0:
        return wav
    import soxr

    return np.ascontiguousarray(soxr.resample(wav, rate, target, quality="HQ"), dtype=np.float32)


def decode_audio(source: str | Path | io.BytesIO, name: str | None = None) -> tuple[np.ndarray, int]:
    """Decode one audio file (a path or an in-memory file) to float32 ``[channels, T]`` and its rate.

    soundfile (libsndfile: wav, flac, ogg, mp3) first, then PyAV (FFmpeg: m4a, aac, opus, ...).
    The one audio decoder of the package: manifests, codec tools and the processor all use it.
    """
    import soundfile as sf

    name = name or str(source)
    try:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        data, rate = sf.read(source if isinstance(source, io.BytesIO) else str(source), dtype="float32",
                             always_2d=True)
        return data.T, int(rate)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_err:
        sf_reason = getattr(sf_err, "error_string", None) or str(sf_err)
    try:
        return _decode_with_av(source)
    except MediaError as av_err:
        raise MediaError(f"cannot decode audio {name} (soundfile: {sf_reason}; PyAV: {av_err})") from None


def _decode_with_av(source: str | Path | io.BytesIO) -> tuple[np.ndarray, int]:
    """The first audio stream through PyAV as planar float32 ``[channels, T]``."""
    import av

    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        with av.open(source if isinstance(source, io.BytesIO) else str(source)) as container:
            if not container.streams.audio:
                raise MediaError("no audio stream")
            stream = container.streams.audio[0]
            # Planar float keeps channels apart and needs no integer scaling.
            resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
            chunks = [f.to_ndarray() for frame in container.decode(stream) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
            rate = stream.rate
    except av.FFmpegError as err:
        raise MediaError(err.strerror or str(err)) from None
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32), int(rate)
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), int(rate)


def load_audio(src: Any, base_dir: Path | None = None, sampling_rate: int | None = None,
               target_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Load one clip as float32 mono at `target_rate` -> [num_samples]. Empty clips are errors."""
    name = _describe(src)
    if isinstance(src, dict) and "array" in src:
        src = (src["array"], src["sampling_rate"])
    if isinstance(src, tuple):
        wav, rate = np.asarray(src[0], dtype=np.float32), int(src[1])
    elif isinstance(src, np.ndarray) or hasattr(src, "numpy"):
        wav = np.asarray(src, dtype=np.float32)
        rate = sampling_rate or target_rate
    else:
        data, path = _read_bytes(src, base_dir)
        if data is None and path is None:
            raise MediaError(f"unsupported audio source of type {name}")
        channels, rate = decode_audio(io.BytesIO(data) if data is not None else path,
                                      name if path is None else str(path))
        wav = channels.mean(axis=0)
    if wav.ndim == 2:  # [channels, n] or [n, channels]: average the short axis
        wav = wav.mean(axis=0 if wav.shape[0] < wav.shape[1] else 1)
    if wav.ndim != 1:
        raise MediaError(f"audio {name} must be mono [n] or [channels, n], got shape {wav.shape}")
    if wav.size == 0:
        raise MediaError(f"audio {name} is empty (0 samples)")
    if not np.isfinite(wav).all():
        raise MediaError(f"audio {name} holds NaN or infinite samples")
    return resample(wav, rate, target_rate)


def load_image(src: Any, base_dir: Path | None = None):
    """Load one image as an RGB `PIL.Image`."""
    from PIL import Image

    if isinstance(src, Image.Image):
        return src.convert("RGB")
    if isinstance(src, np.ndarray):
        return Image.fromarray(src).convert("RGB")
    data, path = _read_bytes(src, base_dir)
    if data is None and path is None:
        raise MediaError(f"unsupported image source of type {_describe(src)}")
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as img:
            return img.convert("RGB")
    except Exception as err:  # noqa: BLE001
        raise MediaError(f"cannot decode image {path or _describe(src)}: {err}") from err


@dataclass
class Video:
    """Decoded frames [T, H, W, 3] uint8 sampled at `fps` frames a second."""

    frames: np.ndarray
    fps: float


def load_video(src: Any, base_dir: Path | None = None, fps: float = 2.0, max_frames: int = 64) -> Video:
    """Decode a video with PyAV, sampling about `fps` frames a second (at most `max_frames`)."""
    if isinstance(src, Video):
        return src
    if isinstance(src, np.ndarray):
        if src.ndim != 4 or src.shape[-1] != 3:
            raise MediaError(f"video array must be [T, H, W, 3], got shape {src.shape}")
        return Video(src.astype(np.uint8), fps)
    data, path = _read_bytes(src, base_dir)
    if data is None and path is None:
        raise MediaError(f"unsupported video source of type {_describe(src)}")
    name = str(path) if path is not None else _describe(src)
    frames, times = sample_video_frames(io.BytesIO(data) if data is not None else path, fps, max_frames, name)
    span = float(times[-1] - times[0])
    return Video(frames, (len(times) - 1) / span if len(times) > 1 and span > 0 else fps)


def sample_video_frames(source: str | Path | io.BytesIO, fps: float, max_frames: int | None,
                        name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames sampled at ``fps`` while decoding (fewer when ``max_frames`` would be passed).

    Returns ``(frames uint8 [N, H, W, 3] RGB, times float [N] seconds)``. Long videos are sampled
    more sparsely, never cut: all of the video stays covered. Only kept frames are held.
    """
    import av

    name = name or str(source)
    frames, times = [], []
    try:
        with av.open(source if isinstance(source, io.BytesIO) else str(source)) as container:
            if not container.streams.video:
                raise MediaError(f"no video stream in {name}")
            stream = container.streams.video[0]
            step = 1.0 / fps
            duration = (float(stream.duration * stream.time_base) if stream.duration
                        else container.duration / 1e6 if container.duration else None)
            if duration and max_frames:
                step = max(step, duration / max_frames)
            next_time = 0.0
            for index, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else index / float(stream.average_rate or fps)
                if t + 1e-6 >= next_time:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    times.append(t)
                    next_time = (np.floor(t / step + 1e-6) + 1) * step
    except av.FFmpegError as err:
        raise MediaError(f"video does not decode: {name} ({err.strerror or err})") from None
    if not frames:
        raise MediaError(f"video has no decodable frame: {name}")
    if max_frames and len(frames) > max_frames:  # duration was unknown up front: thin out evenly
        keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames, times = [frames[i] for i in keep], [times[i] for i in keep]
    return np.stack(frames), np.asarray(times, dtype=np.float64)
