"""Encoding of spoken replies into the formats OpenAI clients ask for.

| format | container / codec                   | sample rate                       |
|--------|-------------------------------------|-----------------------------------|
| wav    | RIFF, PCM 16-bit mono (libsndfile)  | the codec's own                   |
| flac   | FLAC 16-bit mono (libsndfile)       | the codec's own                   |
| mp3    | MPEG layer III (libsndfile/LAME)    | the codec's own                   |
| opus   | Ogg Opus (libsndfile)               | 48 kHz (Opus allows no 22.05/44.1)|
| aac    | ADTS AAC (PyAV)                     | the codec's own                   |
| pcm16  | raw signed 16-bit little-endian     | 24 kHz, as OpenAI defines it      |

Streaming (`stream: true`) sends pcm16 only: raw pieces that concatenate into one stream
(`Pcm16Stream` resamples continuously across chunks, so their seams do not click).
"""

from __future__ import annotations

import io

import numpy as np

from nexus_o.serve.request_media import PCM16_SAMPLE_RATE

STREAM_FORMATS = ("pcm16",)
_SOUNDFILE = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"),
              "opus": ("OGG", "OPUS")}
OPUS_SAMPLE_RATE = 48_000


def output_sample_rate(fmt: str, codec_rate: int) -> int:
    """Sample rate of a reply encoded as `fmt` from audio at `codec_rate`."""
    return {"pcm16": PCM16_SAMPLE_RATE, "opus": OPUS_SAMPLE_RATE}.get(fmt, codec_rate)


def _resample(wav: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return wav
    import soxr

    return soxr.resample(wav, rate, target).astype(np.float32)


def to_pcm16(wav: np.ndarray) -> bytes:
    """float32 [n] in [-1, 1] -> little-endian int16 bytes (clipped)."""
    return (np.clip(wav, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _aac(wav: np.ndarray, rate: int) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="adts") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        samples = wav.astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def encode_audio(wav: np.ndarray, rate: int, fmt: str) -> bytes:
    """float32 mono [n] at `rate` -> the bytes of a `fmt` file (see the module table)."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    target = output_sample_rate(fmt, rate)
    wav = _resample(wav, rate, target)
    if fmt == "pcm16":
        return to_pcm16(wav)
    if fmt == "aac":
        return _aac(wav, target)
    if fmt not in _SOUNDFILE:
        raise ValueError(f"unknown audio format {fmt!r}; expected one of pcm16, aac, {', '.join(_SOUNDFILE)}")
    import soundfile as sf

    container, subtype = _SOUNDFILE[fmt]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wav, -1.0, 1.0), target, format=container, subtype=subtype)
    return buffer.getvalue()


class Pcm16Stream:
    """Chunks of float32 audio at `rate` -> pcm16 bytes at 24 kHz, resampled as one stream."""

    def __init__(self, rate: int):
        import soxr

        self.rate = rate
        self._resampler = soxr.ResampleStream(rate, PCM16_SAMPLE_RATE, 1, dtype="float32") \
            if rate != PCM16_SAMPLE_RATE else None

    def push(self, wav: np.ndarray, last: bool = False) -> bytes:
        """Encode the next chunk [n]; `last=True` flushes what the resampler holds back."""
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            wav = self._resampler.resample_chunk(wav, last=last)
        return to_pcm16(wav)
