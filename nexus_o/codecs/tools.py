"""File-level codec operations behind ``nexus-o codec roundtrip`` and ``nexus-o codec fit``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nexus_o.codecs.audio_io import collect_audio_paths, write_audio
from nexus_o.codecs.base import SpeechCodec
from nexus_o.codecs.builtin import BuiltinCodec, fit_builtin_codec
from nexus_o.codecs.registry import resolve_codec
from nexus_o.processing.media_decoding import load_audio


@dataclass(frozen=True)
class RoundTripReport:
    frames: int
    codebooks: int
    frame_rate: float
    input_seconds: float
    output_seconds: float
    sample_rate: int


def roundtrip_file(
    in_path: str | Path, out_path: str | Path, codec: str | SpeechCodec = "builtin", device: str = "cpu"
) -> RoundTripReport:
    """Encode ``in_path`` (any rate, channels averaged) and write the decoded audio to ``out_path``
    at the codec's sample rate."""
    codec = resolve_codec(codec, device=device) if isinstance(codec, str) else codec
    samples, rate = load_audio(in_path)
    codes = codec.encode(torch.from_numpy(samples)[None, None], sample_rate=rate)
    wav = codec.decode(codes)[0, 0].cpu().numpy()
    write_audio(out_path, wav, codec.sample_rate)
    return RoundTripReport(
        frames=codes.shape[-1],
        codebooks=codes.shape[1],
        frame_rate=codec.frame_rate,
        input_seconds=len(samples) / rate,
        output_seconds=len(wav) / codec.sample_rate,
        sample_rate=codec.sample_rate,
    )


def fit_codec_from_source(
    source: str | Path,
    out_dir: str | Path,
    num_codebooks: int = 8,
    codebook_size: int = 512,
    iters: int = 10,
    seed: int = 0,
    max_frames: int | None = 200_000,
) -> tuple[BuiltinCodec, int]:
    """Fit the built-in codec on the audio named by ``source`` (folder, JSONL manifest or file) and
    save it to ``out_dir``. Returns the codec and the number of files used."""
    paths = collect_audio_paths(source)
    codec = fit_builtin_codec(
        paths, num_codebooks=num_codebooks, codebook_size=codebook_size, iters=iters, seed=seed, max_frames=max_frames
    )
    codec.save_pretrained(out_dir)
    return codec, len(paths)
