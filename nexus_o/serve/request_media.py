"""Decoding of request media, with the server's safety limits applied before the heavy work.

Sources: `data:` URLs (base64, strictly checked), and local files (`file://` URLs or plain paths)
only inside `ServeSettings.allow_local_media` (resolved, so symlinks cannot escape it). http(s)
URLs are always refused: the server never fetches anything. `input_audio` carries bare base64
in one of: wav, flac (libsndfile), mp3 (PyAV, mp3 demuxer only), pcm16 (raw signed 16-bit
little-endian mono at 24 kHz: OpenAI's definition). WAV and FLAC must hold linear PCM or float
samples (A-law, mu-law, ADPCM, GSM are refused), a RIFF WAV's chunk sizes must agree with the
bytes that follow (libsndfile would silently read a truncated file), and a clip must last at
least the length of one audio token (shorter ones encode to padding only). Images are checked from their header
(width * height) before any pixel is decoded; only PNG, JPEG, WEBP, GIF and BMP are opened.
Videos are opened with an explicit demuxer chosen from their magic bytes (MP4/MOV, Matroska/WebM,
AVI) so that no playlist or URL-following demuxer ever runs, then sampled frame by frame.
Every failure is a 400 `ApiError` naming the request field.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from nexus_o.processing.media_decoding import (
    AudioTooLongError, EmptyAudioError, MediaError, NonFiniteAudioError, Video, load_audio)
from nexus_o.serve.errors import ApiError, bad_request
from nexus_o.serve.settings import ServeSettings

PCM16_SAMPLE_RATE = 24_000
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
SOUNDFILE_FORMATS = {"wav": ("WAV", "WAVEX", "RF64", "W64"), "flac": ("FLAC",)}
PCM_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
SAMPLE_RATES = (1_000, 384_000)  # accepted input sample rates, Hz (inclusive)
VIDEO_FRAME_PIXELS = 1280 * 720  # sampled frames are scaled down to this; the processor resizes further


def b64decode(text: str, param: str) -> bytes:
    """Strict base64 (standard alphabet, whitespace ignored) -> bytes; 400 on anything else."""
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise bad_request(f"{param} is not valid base64: {err}", param=param, code="invalid_base64") from None
    if not data:
        raise bad_request(f"{param} is empty", param=param, code="empty_media")
    return data


def _data_url(url: str, kind: str, param: str) -> bytes:
    header, comma, payload = url[len("data:"):].partition(",")
    if not comma:
        raise bad_request(f"{param} is a malformed data URL (no comma)", param=param, code="invalid_data_url")
    fields = header.split(";")
    mime = fields[0].strip().lower()
    if "base64" not in fields[1:]:
        raise bad_request(f"{param}: only base64 data URLs are accepted (data:{kind}/...;base64,...)",
                          param=param, code="invalid_data_url")
    if mime and not mime.startswith(kind + "/") and mime != "application/octet-stream":
        raise bad_request(f"{param}: expected a {kind}/* data URL, got {mime!r}", param=param,
                          code="invalid_data_url")
    return b64decode(payload, param)


def _local_file(url: str, settings: ServeSettings, param: str) -> bytes:
    if settings.allow_local_media is None:
        raise bad_request(f"{param}: local files (file:// URLs and paths) are refused; the server must be "
                          f"started with --allow-local-media DIR", param=param, code="local_media_refused")
    root = Path(settings.allow_local_media).resolve(strict=True)
    raw = unquote(urlsplit(url).path) if url.startswith("file:") else url
    path = Path(raw) if Path(raw).is_absolute() else root / raw
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise bad_request(f"{param}: no such file {raw!r}", param=param, code="media_not_found") from None
    if not resolved.is_relative_to(root):
        raise bad_request(f"{param}: {raw!r} lies outside the allowed media folder", param=param,
                          code="local_media_refused")
    if not resolved.is_file():
        raise bad_request(f"{param}: {raw!r} is not a file", param=param, code="media_not_found")
    if resolved.stat().st_size > settings.max_body_bytes:
        raise ApiError(413, f"{param}: {raw!r} is larger than {settings.max_body_bytes} bytes", param=param,
                       code="media_too_large")
    return resolved.read_bytes()


def media_bytes(url: str, kind: str, settings: ServeSettings, param: str) -> bytes:
    """The bytes a media URL names: a data URL, or an allowed local file. kind: image | video."""
    if url.startswith("data:"):
        return _data_url(url, kind, param)
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https", "ftp", "ws", "wss"):
        raise bad_request(f"{param}: remote {scheme} URLs are refused (the server never fetches); send the "
                          f"{kind} inline as a data URL", param=param, code="remote_media_refused")
    if scheme in ("", "file"):
        return _local_file(url, settings, param)
    raise bad_request(f"{param}: unsupported URL scheme {scheme!r}; use a data URL", param=param,
                      code="invalid_url")


# -- images ---------------------------------------------------------------------------------------
def decode_image(data: bytes, settings: ServeSettings, param: str):
    """Bytes -> RGB PIL image; the pixel count is checked from the header first."""
    from PIL import Image, UnidentifiedImageError

    import warnings

    limit = settings.max_image_pixels
    too_big = f"{param}: image is larger than the {limit} pixels this server accepts"
    try:
        # Our own limit is checked below from the header; Pillow's process-wide one is left as it
        # is (changing it would leak into everything else in the process), its warning silenced.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:
        raise bad_request(too_big, param=param, code="image_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise bad_request(f"{param}: not a decodable image (accepted: {', '.join(IMAGE_FORMATS)})", param=param,
                          code="invalid_image") from None
    width, height = image.size
    if width * height > limit:
        raise bad_request(f"{too_big} ({width}x{height})", param=param, code="image_too_large")
    try:
        return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise bad_request(f"{param}: image data is corrupt ({err})", param=param, code="invalid_image") from None


# -- audio ----------------------------------------------------------------------------------------
def _check_seconds(seconds: float, settings: ServeSettings, param: str) -> None:
    if seconds > settings.max_audio_seconds:
        raise bad_request(f"{param}: audio lasts {seconds:.1f} s, over the {settings.max_audio_seconds:g} s limit",
                          param=param, code="audio_too_long")


def _check_riff(data: bytes, param: str) -> None:
    """A RIFF/WAVE file's chunks must fit in the bytes given, and its data must be whole frames."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return  # RF64, W64 or not a WAV at all: libsndfile decides below
    if int.from_bytes(data[4:8], "little") > len(data) - 8:
        raise bad_request(f"{param}: the WAV header says the file holds {int.from_bytes(data[4:8], 'little') + 8} "
                          f"bytes but it has {len(data)}", param=param, code="invalid_audio")
    offset, block_align = 12, None
    while offset + 8 <= len(data):
        chunk, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], "little")
        body = offset + 8
        if size > len(data) - body:
            raise bad_request(f"{param}: the WAV {chunk.decode('latin-1')!r} chunk says it holds {size} bytes but "
                              f"only {len(data) - body} follow", param=param, code="invalid_audio")
        if chunk == b"fmt " and size >= 14:
            block_align = int.from_bytes(data[body + 12:body + 14], "little")
        if chunk == b"data" and block_align and size % block_align:
            raise bad_request(f"{param}: the WAV data chunk holds {size} bytes, not a whole number of "
                              f"{block_align}-byte frames", param=param, code="invalid_audio")
        offset = body + size + (size & 1)  # chunks are padded to even sizes


def _soundfile_audio(data: bytes, fmt: str, settings: ServeSettings, param: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if fmt == "wav":
        _check_riff(data, param)
    try:
        info = sf.info(io.BytesIO(data))
    except (RuntimeError, sf.LibsndfileError):
        raise bad_request(f"{param}: not a readable {fmt} file", param=param, code="invalid_audio") from None
    if info.format not in SOUNDFILE_FORMATS[fmt]:
        raise bad_request(f"{param}: declared format {fmt!r} but the data is {info.format}", param=param,
                          code="invalid_audio")
    if info.subtype not in PCM_SUBTYPES:
        raise bad_request(f"{param}: unsupported {fmt} encoding {info.subtype} ({info.subtype_info}); send linear "
                          f"PCM (8/16/24/32-bit) or float samples", param=param, code="unsupported_audio_encoding")
    _check_seconds(info.frames / max(info.samplerate, 1), settings, param)
    return _load_audio(data, settings, param, f"{param}: {fmt} data is corrupt", container=fmt)


def _load_audio(data: bytes, settings: ServeSettings, param: str, undecodable: str,
                container: str | None = None) -> tuple[np.ndarray, int]:
    """The package's one audio reader, its errors turned into 400s naming the request field."""
    try:
        return load_audio(data, container=container, max_seconds=settings.max_audio_seconds)
    except AudioTooLongError as err:
        _check_seconds(err.seconds, settings, param)
        raise
    except EmptyAudioError:
        raise bad_request(f"{param}: audio holds no samples", param=param, code="invalid_audio") from None
    except NonFiniteAudioError:
        raise bad_request(f"{param}: audio holds NaN or infinite samples", param=param,
                          code="invalid_audio") from None
    except MediaError:
        raise bad_request(undecodable, param=param, code="invalid_audio") from None


def decode_audio(data: bytes, fmt: str, settings: ServeSettings, param: str,
                 min_seconds: float = 0.0) -> tuple[np.ndarray, int]:
    """Bytes in `fmt` -> (float32 mono [n], sample_rate); duration checked before full decoding.

    min_seconds: shorter clips are refused (too short to encode).
    """
    if fmt == "pcm16":
        if len(data) % 2:
            raise bad_request(f"{param}: pcm16 data must hold whole 16-bit samples (odd byte count)",
                              param=param, code="invalid_audio")
        _check_seconds(len(data) / 2 / PCM16_SAMPLE_RATE, settings, param)
        wav, rate = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, PCM16_SAMPLE_RATE
    elif fmt in SOUNDFILE_FORMATS:
        wav, rate = _soundfile_audio(data, fmt, settings, param)
    elif fmt == "mp3":  # the mp3 demuxer only; decoding stops once the clip passes the limit
        wav, rate = _load_audio(data, settings, param, f"{param}: not decodable mp3 data", container="mp3")
    else:
        raise bad_request(f"{param}: unsupported audio format {fmt!r}", param=param, code="invalid_audio")
    if wav.size == 0:
        raise bad_request(f"{param}: audio holds no samples", param=param, code="invalid_audio")
    if not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
        raise bad_request(f"{param}: a sample rate of {rate} Hz is outside the accepted {SAMPLE_RATES[0]}-"
                          f"{SAMPLE_RATES[1]} Hz", param=param, code="invalid_audio")
    if wav.size / rate < min_seconds:
        raise bad_request(f"{param}: audio lasts {wav.size / rate:.4g} s ({wav.size} samples at {rate} Hz); the "
                          f"model needs at least {min_seconds:g} s to encode it", param=param,
                          code="audio_too_short")
    if not np.isfinite(wav).all():
        raise bad_request(f"{param}: audio holds NaN or infinite samples", param=param, code="invalid_audio")
    return np.ascontiguousarray(wav, dtype=np.float32), int(rate)


# -- video ----------------------------------------------------------------------------------------
def _demuxer(data: bytes) -> str | None:
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    return None


def decode_video(data: bytes, settings: ServeSettings, param: str, fps: float = 2.0, max_frames: int = 64) -> Video:
    """Bytes -> `Video` of at most `max_frames` frames sampled about `fps` a second.

    Frame size, duration and frame count are checked from the container (without decoding);
    only the sampled frames are kept, each scaled to at most VIDEO_FRAME_PIXELS.
    """
    import av

    fmt = _demuxer(data)
    if fmt is None:
        raise bad_request(f"{param}: unsupported video container (accepted: MP4/MOV, WebM/Matroska, AVI)",
                          param=param, code="invalid_video")
    try:
        with av.open(io.BytesIO(data), format=fmt) as container:
            if not container.streams.video:
                raise bad_request(f"{param}: the video holds no video stream", param=param, code="invalid_video")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > settings.max_image_pixels:
                raise bad_request(f"{param}: video frames of {width}x{height} exceed {settings.max_image_pixels} "
                                  f"pixels", param=param, code="video_too_large")
            count = sum(1 for packet in container.demux(stream) if packet.size)
        if count == 0:
            raise bad_request(f"{param}: the video holds no frames", param=param, code="invalid_video")
        if count > settings.max_video_frames:
            raise bad_request(f"{param}: the video has {count} frames, over the {settings.max_video_frames} limit",
                              param=param, code="video_too_long")
        return _sample_frames(data, fmt, count, settings, param, fps, max_frames)
    except av.FFmpegError:
        raise bad_request(f"{param}: not decodable video data", param=param, code="invalid_video") from None


def _sample_frames(data: bytes, fmt: str, count: int, settings: ServeSettings, param: str, fps: float,
                   max_frames: int) -> Video:
    import av

    with av.open(io.BytesIO(data), format=fmt) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        if duration is None and container.duration:
            duration = container.duration / av.time_base
        duration = duration or count / float(stream.average_rate or 25)
        if duration > settings.max_video_seconds:
            raise bad_request(f"{param}: the video lasts {duration:.1f} s, over the {settings.max_video_seconds:g} "
                              f"s limit", param=param, code="video_too_long")
        want = int(min(max_frames, max(2, round(duration * fps) + 1), count))
        keep = set(np.linspace(0, count - 1, num=want).round().astype(int).tolist())
        scale = min(1.0, (VIDEO_FRAME_PIXELS / (stream.codec_context.width * stream.codec_context.height)) ** 0.5)
        frames = []
        for index, frame in enumerate(container.decode(stream)):
            if index in keep:
                size = (max(2, int(frame.width * scale) // 2 * 2), max(2, int(frame.height * scale) // 2 * 2))
                frames.append(frame.to_ndarray(format="rgb24", width=size[0], height=size[1]))
    if not frames:
        raise bad_request(f"{param}: no video frame could be decoded", param=param, code="invalid_video")
    sampled_fps = (len(frames) - 1) / duration if len(frames) > 1 else fps
    return Video(np.stack(frames), max(sampled_fps, 1e-3))
