"""Tiny media files written by the data tests themselves (no fixtures on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_wav(path: Path, seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    wav = 0.2 * np.sin(2 * np.pi * 220 * t).astype(np.float32)
    sf.write(path, np.stack([wav] * channels, axis=1) if channels > 1 else wav, rate)
    return path


def write_empty_wav(path: Path) -> Path:
    import soundfile as sf

    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    return path


def write_corrupt(path: Path) -> Path:
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    return path


def write_png(path: Path, size: tuple[int, int] = (12, 8)) -> Path:
    from PIL import Image

    Image.new("RGB", size, (200, 30, 30)).save(path)
    return path


def write_mp4(path: Path, frames: int = 8, fps: int = 4, size: int = 32) -> Path:
    """An mpeg4 clip of ``frames`` grey frames at ``fps``, written with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_m4a(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    """AAC in an MP4 container: a format libsndfile cannot read, so PyAV must."""
    import av

    wav = (0.2 * np.sin(np.arange(int(seconds * rate)) / 10)).astype(np.float32)[None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        for start in range(0, wav.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wav[:, start:start + 1024]), format="fltp",
                                               layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def asr_line(audio: str, text: str = "hello", **extra) -> dict:
    return {"messages": [{"role": "user", "content": "<audio>Transcribe."}, {"role": "assistant", "content": text}],
            "audios": [audio], "task": "asr", **extra}


def write_manifest(path: Path, lines: list) -> Path:
    """Write dicts as JSON lines; bytes and str entries are written verbatim."""
    with open(path, "wb") as f:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line, ensure_ascii=False)
            f.write((line.encode("utf-8") if isinstance(line, str) else line) + b"\n")
    return path
