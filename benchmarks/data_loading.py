"""Data-layer throughput and batching efficiency on a synthetic manifest.

    python benchmarks/data_loading.py [--lines 4000] [--clips 200]

Prints: validation speed (schema only / full decode), Arrow build vs cached reload, streaming
read speed and audio decoding speed. (Batches grouped by length are the Trainer's
`group_by_length`, see `nexus_o.train.run.sample_length`.)
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from nexus_o.data.dataset import load_manifest_dataset
from nexus_o.data.manifest import validate_manifest
from nexus_o.data.media_checks import load_audio


def write_world(folder: Path, lines: int, clips: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    """``clips`` wavs (0.5-6 s, 22.05 kHz) and a manifest of ``lines`` ASR samples over them."""
    rng = np.random.default_rng(seed)
    seconds = rng.uniform(0.5, 6.0, size=clips)
    for i, s in enumerate(tqdm(seconds, desc="write clips")):
        sf.write(folder / f"clip{i}.wav", (0.1 * rng.standard_normal(int(s * 22050))).astype(np.float32), 22050)
    text_tokens = rng.integers(5, 200, size=lines)
    picks = rng.integers(0, clips, size=lines)
    with open(folder / "train.jsonl", "w") as f:
        for n in range(lines):
            f.write(json.dumps({"messages": [{"role": "user", "content": "<audio>Transcribe."},
                                             {"role": "assistant", "content": "w " * int(text_tokens[n])}],
                                "audios": [f"clip{picks[n]}.wav"], "task": "asr"}) + "\n")
    # Token estimate as the model sees it: 10 audio tokens a second plus the text.
    return folder / "train.jsonl", text_tokens + np.round(seconds[picks] * 10).astype(int) + 8


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--clips", type=int, default=200)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    logging.getLogger("datasets").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest, _ = write_world(folder, args.lines, args.clips)
        n = args.lines
        _, t_schema = timed(lambda: validate_manifest(manifest, check_media=False, progress=False))
        _, t_full = timed(lambda: validate_manifest(manifest, check_media=True, progress=False))
        print(f"validate, schema only:       {n / t_schema:9.0f} lines/s")
        print(f"validate, decode all media:  {n / t_full:9.0f} lines/s")

        cache = folder / "cache"
        ds, t_build = timed(lambda: load_manifest_dataset(manifest, cache_dir=cache))
        _, t_reload = timed(lambda: load_manifest_dataset(manifest, cache_dir=cache))
        print(f"Arrow build (media=exists):  {n / t_build:9.0f} lines/s; cached reload {t_build / t_reload:.0f}x faster")
        _, t_stream = timed(lambda: sum(1 for _ in load_manifest_dataset(manifest, streaming=True, on_error="skip")))
        print(f"streaming read:              {n / t_stream:9.0f} rows/s")

        batch = ds[:256]
        _, t_media = timed(lambda: [load_audio(ref, sampling_rate=16000) for refs in batch["audios"] for ref in refs])
        audio_s = float(np.sum(batch["audio_seconds"]))
        print(f"decode + resample 22.05k->16k: {256 / t_media:7.0f} samples/s ({audio_s / t_media:.0f}x real time)")

if __name__ == "__main__":
    main()
