"""Media loading: audio (the package's one audio reader, `load_audio`), images, video frames.

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
SOUNDFILE_CONTAINERS = ("wav", "flac")


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
            raise MediaNotFoundError(f"media file not found: {path}")
        return None, path
    return None, None


def resample(wav: np.ndarray, rate: int, target: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Resample float32 audio ``[T]`` or ``[T, channels]`` with soxr (high quality); identity when rates agree."""
    if rate == target or wav.shape[0] == 0:
        return wav
    import soxr

    return np.ascontiguousarray(soxr.resample(wav, rate, target, quality="HQ"), dtype=np.float32)


class MediaNotFoundError(MediaError, FileNotFoundError):
    """A media file does not exist (both a `MediaError` and a `FileNotFoundError`)."""


class EmptyAudioError(MediaError):
    """An audio source decodes to 0 samples."""


class NonFiniteAudioError(MediaError):
    """An audio source holds NaN or infinite samples."""


class AudioTooLongError(MediaError):
    """Decoding stopped at `max_seconds`: the clip is longer (`seconds` is how far it got)."""

    def __init__(self, message: str, seconds: float):
        super().__init__(message)
        self.seconds = seconds


def load_audio(source: Any, sampling_rate: int | None = None, *, mono: bool = True, base_dir: Path | None = None,
               container: str | None = None, max_seconds: float | None = None,
               name: str | None = None) -> tuple[np.ndarray, int]:
    """The one audio reader of the package: decode (or take) a clip, mix it down and resample it.

    source: a path or `file://` URL (relative ones resolve against `base_dir`), a base64 `data:`
    URL, bytes or an in-memory file, an `(array, rate)` pair or a `{"array", "sampling_rate"}`
    dict (the `datasets` Audio format). Files go through soundfile (libsndfile: wav, flac, ogg,
    mp3) first, then PyAV (FFmpeg: m4a, aac, opus, ...). `container` pins the format: "wav" and
    "flac" are read by soundfile only, anything else (e.g. "mp3") by that one FFmpeg demuxer only.
    `max_seconds` stops PyAV decoding once passed (`AudioTooLongError`), so a huge clip is never
    held whole.
    Returns `(wav float32, rate)`: wav is `[T]` when `mono` (channels averaged) else `[C, T]`;
    rate is `sampling_rate` when given (soxr resampling), else the source's own.
    Errors (`MediaError`) name the file; empty clips (`EmptyAudioError`) and NaN/inf samples are errors.
    """
    name = name or _describe(source)
    if isinstance(source, dict) and "array" in source:
        source = (source["array"], source["sampling_rate"])
    if isinstance(source, tuple):
        wav, rate = np.asarray(source[0], dtype=np.float32), int(source[1])
        if wav.ndim == 2 and wav.shape[0] > wav.shape[1]:  # [n, channels] -> [channels, n]
            wav = wav.T
        wav = wav[None] if wav.ndim == 1 else wav
        if wav.ndim != 2:
            raise MediaError(f"audio {name} must be mono [n] or [channels, n], got shape {wav.shape}")
    else:
        if not isinstance(source, io.BytesIO):
            data, path = _read_bytes(source, base_dir)
            if data is None and path is None:
                raise MediaError(f"unsupported audio source of type {name}")
            source, name = (io.BytesIO(data), name) if data is not None else (path, str(path))
        wav, rate = _decode_audio(source, name, container, max_seconds)
    if wav.shape[1] == 0:
        raise EmptyAudioError(f"audio has 0 samples (empty): {name}")
    if not np.isfinite(wav).all():
        raise NonFiniteAudioError(f"audio holds NaN or infinite samples: {name}")
    if mono:
        wav = wav.mean(axis=0)
    if sampling_rate is not None and sampling_rate != rate:
        wav = resample(wav, rate, sampling_rate) if mono else resample(wav.T, rate, sampling_rate).T
        rate = sampling_rate
    return np.ascontiguousarray(wav, dtype=np.float32), int(rate)


def _decode_audio(source: Path | io.BytesIO, name: str, container: str | None,
                  max_seconds: float | None) -> tuple[np.ndarray, int]:
    """A file (path or in-memory) -> float32 ``[channels, T]`` and its rate."""
    import soundfile as sf

    sf_reason = f"skipped for {container}"
    if container is None or container in SOUNDFILE_CONTAINERS:
        try:
            if isinstance(source, io.BytesIO):
                source.seek(0)
            data, rate = sf.read(source if isinstance(source, io.BytesIO) else str(source), dtype="float32",
                                 always_2d=True)
            return data.T, int(rate)
        except (sf.LibsndfileError, RuntimeError, TypeError) as sf_err:
            sf_reason = getattr(sf_err, "error_string", None) or str(sf_err)
        if container is not None:  # pinned to libsndfile: FFmpeg never sees it
            raise MediaError(f"audio does not decode: {name} (soundfile: {sf_reason})")
    try:
        return _decode_with_av(source, container, max_seconds, name)
    except AudioTooLongError:
        raise
    except MediaError as av_err:
        raise MediaError(f"audio does not decode: {name} (soundfile: {sf_reason}; PyAV: {av_err})") from None


def _decode_with_av(source: Path | io.BytesIO, container: str | None, max_seconds: float | None,
                    name: str) -> tuple[np.ndarray, int]:
    """The first audio stream through PyAV as planar float32 ``[channels, T]``."""
    import av

    if isinstance(source, io.BytesIO):
        source.seek(0)
    chunks, total = [], 0
    try:
        with av.open(source if isinstance(source, io.BytesIO) else str(source), format=container) as opened:
            if not opened.streams.audio:
                raise MediaError("no audio stream")
            stream = opened.streams.audio[0]
            rate = stream.rate
            # Planar float keeps channels apart and needs no integer scaling.
            resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=rate)
            for frame in opened.decode(stream):
                for piece in resampler.resample(frame):
                    chunks.append(piece.to_ndarray())
                    total += chunks[-1].shape[1]
                if max_seconds is not None and total > max_seconds * rate:  # stop at once: no unbounded buffers
                    raise AudioTooLongError(f"audio {name} lasts over {max_seconds:g} s", total / rate)
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
    except av.FFmpegError as err:
        raise MediaError(err.strerror or str(err)) from None
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32), int(rate)
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), int(rate)


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
