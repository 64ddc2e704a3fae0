"""Processors and a job entry point for the runner tests (importable by worker and child processes)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from nexus_o.synth.pipeline import item_rng
from nexus_o.synth.runner import ShardSink, run_shards

ITEMS = [f"item {i}" if i % 7 != 3 else f"bad {i}" for i in range(40)]


class ToneProcessor:
    """Writes a tone whose pitch comes from the item's seeded generator; rejects items saying "bad".

    Args:
        delay: seconds slept per item (to give a test time to kill the run).
        crash_at: item index at which to raise, simulating a crash part way through a shard.
    """

    def __init__(self, seed: int = 0, delay: float = 0.0, crash_at: int | None = None):
        self.seed, self.delay, self.crash_at = seed, delay, crash_at

    def process(self, index: int, item: str, sink: ShardSink) -> None:
        time.sleep(self.delay)
        if index == self.crash_at:
            raise RuntimeError(f"injected crash at item {index}")
        sink.stats.stages["input"] += 1
        if item.startswith("bad"):
            sink.reject(index, "check", "bad_item", text=item)
            return
        rng = item_rng(self.seed, index, "tone")
        freq = rng.uniform(100, 400)
        wav = 0.3 * np.sin(2 * np.pi * freq * np.arange(1600) / 16000)
        ref = sink.write_audio(f"{index:05d}.wav", wav, 16000)
        sink.stats.asr_check("fake-asr", "tone:low" if freq < 250 else "tone:high", passed=index % 2 == 0)
        sink.add({"id": index, "text": item, "audio": ref, "freq": round(freq, 3)})
        sink.stats.stages["written"] += 1


def run_tones(out: str | Path, *, workers: int = 1, engine: str = "local", delay: float = 0.0,
              crash_at: int | None = None, seed: int = 0, shard_size: int = 4):
    """The tone job over ITEMS; the same call always gives the same outputs."""
    from functools import partial

    return run_shards(ITEMS, partial(ToneProcessor, seed, delay, crash_at), out, shard_size=shard_size,
                      fingerprint={"job": "tones", "seed": seed}, engine=engine, workers=workers, progress=False)


if __name__ == "__main__":  # python -m tests.synth.runner_jobs OUT [DELAY]: the slow job a test kills
    run_tones(sys.argv[1], workers=2, delay=float(sys.argv[2]) if len(sys.argv) > 2 else 0.05)
