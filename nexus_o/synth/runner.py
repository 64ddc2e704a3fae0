"""Sharded, resumable synthesis runs: nothing lost, nothing written twice, whatever kills the run.

Input items (text lines, audio files, clip specs, ...) are cut into shards by item index:
shard k holds items [k * shard_size, (k + 1) * shard_size). An `ItemProcessor` turns each item
into manifest records, rejects (with reasons), review lines and audio files through a `ShardSink`.
A finished shard is published in this order, each step atomic (temp name, then `os.replace`):

    out/audio/shard-XXXXX/                 its audio files (staged in audio/.shard-XXXXX.partial)
    out/shards/shard-XXXXX.jsonl           records        (.rejects.jsonl, .review.jsonl beside it)
    out/shards/shard-XXXXX.done            its counts, written last: the shard is finished

A run that is started again skips shards with a `.done` marker and redoes the others from
scratch, so, as long as every random choice is seeded per item (never by processing order), the
merged `out/manifest.jsonl`, `rejects.jsonl` and `review.jsonl` are byte-identical to those of an
uninterrupted run. `out/run.json` records what the run was (config fingerprint, item hash,
shard size); a second run with other settings into the same folder is refused. One run per
output folder at a time.

Engines: "local" runs shards in a process pool on all cores (in-process when workers == 1);
"ray" runs the same shard function through Ray Data (`runner_ray`). The pool's workers die with
the runner: on Linux the kernel kills each one when the runner process goes (PR_SET_PDEATHSIG),
elsewhere a watchdog thread in each worker notices its parent is gone; a killed run leaves no
worker computing or writing behind it.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

OUTPUTS = ("manifest", "rejects", "review")  # merged files: out/<name>.jsonl
_SHARD_SUFFIX = {"manifest": ".jsonl", "rejects": ".rejects.jsonl", "review": ".review.jsonl"}


class RunMismatchError(ValueError):
    """The output folder holds a run with other settings or other input."""


@dataclass(frozen=True)
class ShardSpec:
    """Items [start, stop) of the input form shard `index`."""

    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}"


def plan_shards(n_items: int, shard_size: int) -> list[ShardSpec]:
    """Deterministic shards of `shard_size` consecutive items (the last may be shorter)."""
    if shard_size <= 0:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    return [
        ShardSpec(k, s, min(s + shard_size, n_items)) for k, s in enumerate(range(0, n_items, shard_size))
    ]


@dataclass
class RunStats:
    """Counts of a shard or a run: items past each stage, rejects per reason, audio, ASR checks."""

    stages: Counter = field(default_factory=Counter)
    rejects: Counter = field(default_factory=Counter)
    review: int = 0
    audio_seconds: float = 0.0
    asr: dict[str, dict[str, list[int]]] = field(
        default_factory=dict
    )  # backend -> voice -> [passed, checked]

    def asr_check(self, backend: str, voice: str, passed: bool) -> None:
        counts = self.asr.setdefault(backend, {}).setdefault(voice, [0, 0])
        counts[0] += int(passed)
        counts[1] += 1

    def merge(self, other: "RunStats") -> None:
        self.stages.update(other.stages)
        self.rejects.update(other.rejects)
        self.review += other.review
        self.audio_seconds += other.audio_seconds
        for backend, voices in other.asr.items():
            for voice, (passed, checked) in voices.items():
                counts = self.asr.setdefault(backend, {}).setdefault(voice, [0, 0])
                counts[0] += passed
                counts[1] += checked

    def to_dict(self) -> dict:
        return {
            "stages": dict(self.stages),
            "rejects": dict(sorted(self.rejects.items())),
            "review": self.review,
            "audio_seconds": round(self.audio_seconds, 6),
            "asr": {b: {v: list(c) for v, c in sorted(vs.items())} for b, vs in sorted(self.asr.items())},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "RunStats":
        return cls(
            Counter(data["stages"]),
            Counter(data["rejects"]),
            data["review"],
            data["audio_seconds"],
            {b: {v: list(c) for v, c in vs.items()} for b, vs in data["asr"].items()},
        )


class ShardSink:
    """Collects what one shard produces. Audio goes to a staging folder until the shard is published."""

    def __init__(self, spec: ShardSpec, out_dir: Path):
        self.spec, self.out_dir = spec, out_dir
        self.staging = out_dir / "audio" / f".{spec.name}.partial"
        self.lines: dict[str, list[dict]] = {name: [] for name in OUTPUTS}
        self.stats = RunStats()

    def add(self, record: dict) -> None:
        """One manifest line."""
        self.lines["manifest"].append(record)

    def reject(self, index: int, stage: str, reason: str, **detail: Any) -> None:
        """Record item `index` as rejected by `stage` for `reason` (counted per reason)."""
        self.lines["rejects"].append({"item": index, "stage": stage, "reason": reason, **detail})
        self.stats.rejects[reason] += 1

    def flag(self, line: dict) -> None:
        """A line for human review (review.jsonl)."""
        self.lines["review"].append(line)
        self.stats.review += 1

    def write_audio(self, name: str, wav: np.ndarray, sample_rate: int) -> str:
        """Write mono `wav` [T] as 16-bit WAV; returns its path relative to the output folder."""
        import soundfile as sf

        self.staging.mkdir(parents=True, exist_ok=True)
        sf.write(
            str(self.staging / name),
            np.clip(np.asarray(wav, np.float32), -1.0, 1.0),
            sample_rate,
            subtype="PCM_16",
        )
        self.stats.audio_seconds += len(wav) / sample_rate
        return f"audio/{self.spec.name}/{name}"


class ItemProcessor(Protocol):
    """Turns one input item into sink writes; all its randomness must be seeded by `index`."""

    def process(self, index: int, item: Any, sink: ShardSink) -> None: ...


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonl(lines: list[dict]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def done_path(out_dir: Path, spec: ShardSpec) -> Path:
    return out_dir / "shards" / f"{spec.name}.done"


def run_shard(spec: ShardSpec, items: Sequence[Any], processor: ItemProcessor, out_dir: Path) -> dict:
    """Process and publish one shard unless its `.done` marker exists; returns its stats dict."""
    marker = done_path(out_dir, spec)
    if marker.is_file():
        return json.loads(marker.read_text())
    sink = ShardSink(spec, out_dir)
    final_audio = out_dir / "audio" / spec.name
    for leftover in (sink.staging, final_audio):  # from an attempt that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    for index in range(spec.start, spec.stop):
        processor.process(index, items[index], sink)
    if sink.staging.is_dir():
        os.replace(sink.staging, final_audio)
    shard_dir = out_dir / "shards"
    for name in OUTPUTS:
        _write_atomic(shard_dir / f"{spec.name}{_SHARD_SUFFIX[name]}", _jsonl(sink.lines[name]))
    stats = sink.stats.to_dict()
    _write_atomic(marker, json.dumps(stats))
    return stats


# Per-worker state of the process pool, set by `_init_worker` in each worker process.
_WORKER: dict[str, Any] = {}


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Make this (worker) process die when process `parent` does, whatever kills it (even SIGKILL).

    Linux: the kernel sends SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); elsewhere a
    daemon thread checks the parent once a second. A parent already gone ends this process now.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="nexus-o-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _init_worker(make_processor: Callable[[], ItemProcessor], items: Sequence[Any], out_dir: Path,
                 parent: int) -> None:
    die_with_parent(parent)
    _WORKER.update(make_processor=make_processor, items=items, out_dir=out_dir, processor=None)


def _work(spec: ShardSpec) -> dict:
    if _WORKER["processor"] is None:  # built on first use, so its errors surface as the shard's error
        _WORKER["processor"] = _WORKER["make_processor"]()
    return run_shard(spec, _WORKER["items"], _WORKER["processor"], _WORKER["out_dir"])


def _items_digest(items: Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(repr(item).encode("utf-8", "backslashreplace") + b"\n")
    return digest.hexdigest()


def _claim_output(out_dir: Path, identity: dict) -> None:
    """Write run.json, or check that the run already in `out_dir` is this one."""
    path = out_dir / "run.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != identity:
            changed = sorted(k for k in identity if previous.get(k) != identity[k])
            raise RunMismatchError(
                f"{out_dir} holds a different run (changed: {', '.join(changed)}); "
                "choose another output folder or delete it to start over"
            )
        return
    _write_atomic(path, json.dumps(identity, indent=2, sort_keys=True, ensure_ascii=False))


@dataclass
class RunSummary:
    """What a run produced (all shards, including ones finished by an earlier attempt)."""

    out_dir: str
    items: int
    shards: int
    shards_skipped: int
    lines: dict[str, int]
    stats: RunStats

    def to_dict(self) -> dict:
        stats = self.stats.to_dict()
        pass_rates = {
            b: {v: {"passed": p, "checked": c, "pass_rate": round(p / c, 4)} for v, (p, c) in vs.items()}
            for b, vs in stats.pop("asr").items()
        }
        return {
            "items": self.items,
            "shards": self.shards,
            "lines": self.lines,
            **stats,
            "audio_hours": round(self.stats.audio_seconds / 3600, 6),
            "asr_pass_rate": pass_rates,
        }

    def format(self) -> str:
        """Plain-text summary for the terminal."""
        d = self.to_dict()
        rows = [
            f"output:   {self.out_dir}",
            f"items:    {self.items} in {self.shards} shards ({self.shards_skipped} already done)",
            "stages:   " + (", ".join(f"{k} {v}" for k, v in d["stages"].items()) or "-"),
            "written:  " + ", ".join(f"{k} {v}" for k, v in self.lines.items()),
            "rejects:  " + (", ".join(f"{k} {v}" for k, v in d["rejects"].items()) or "-"),
            f"audio:    {d['audio_hours']:.4f} h",
        ]
        for backend, voices in d["asr_pass_rate"].items():
            for voice, r in voices.items():
                rows.append(
                    f"asr pass: {backend} / {voice}: {r['passed']}/{r['checked']} ({r['pass_rate']:.1%})"
                )
        return "\n".join(rows)


def merge_shards(out_dir: Path, specs: Sequence[ShardSpec], items: int, skipped: int) -> RunSummary:
    """Concatenate the finished shards in shard order into out/{manifest,rejects,review}.jsonl."""
    stats = RunStats()
    lines = dict.fromkeys(OUTPUTS, 0)
    for spec in specs:
        stats.merge(RunStats.from_dict(json.loads(done_path(out_dir, spec).read_text())))
    for name in OUTPUTS:
        tmp = out_dir / f"{name}.jsonl.tmp"
        with open(tmp, "wb") as merged:
            for spec in specs:
                data = (out_dir / "shards" / f"{spec.name}{_SHARD_SUFFIX[name]}").read_bytes()
                lines[name] += data.count(b"\n")
                merged.write(data)
        os.replace(tmp, out_dir / f"{name}.jsonl")
    summary = RunSummary(str(out_dir), items, len(specs), skipped, lines, stats)
    _write_atomic(
        out_dir / "summary.json", json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n"
    )
    return summary


def run_shards(
    items: Sequence[Any],
    make_processor: Callable[[], ItemProcessor],
    out_dir: str | Path,
    *,
    shard_size: int,
    fingerprint: dict,
    engine: str = "local",
    workers: int = 0,
    ray_address: str | None = None,
    progress: bool = True,
    desc: str = "synth",
) -> RunSummary:
    """Run `make_processor()` over `items` shard by shard into `out_dir`, resuming finished shards.

    Args:
        items: the input, indexable; each worker receives it once (fork / Ray object store).
        make_processor: picklable factory, called once per worker process.
        fingerprint: JSON-able settings that decide the output; stored in run.json and checked.
        engine: "local" (process pool) or "ray" (Ray Data on a local or given cluster).
        workers: processes / Ray CPUs; 0 = all cores; 1 = in this process (local engine).

    Returns:
        The summary, also written to out/summary.json.
    """
    out_dir = Path(out_dir)
    (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    specs = plan_shards(len(items), shard_size)
    _claim_output(
        out_dir,
        {
            "fingerprint": fingerprint,
            "items": len(items),
            "items_sha256": _items_digest(items),
            "shard_size": shard_size,
        },
    )
    todo = [s for s in specs if not done_path(out_dir, s).is_file()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    done_items = sum(s.stop - s.start for s in specs) - sum(s.stop - s.start for s in todo)
    with tqdm(total=len(items), initial=done_items, unit="item", desc=desc, disable=not progress) as bar:
        if engine == "ray":
            from nexus_o.synth.runner_ray import run_shards_ray

            run_shards_ray(todo, items, make_processor, out_dir, workers, ray_address, bar)
        elif engine != "local":
            raise ValueError(f"unknown engine {engine!r}; expected 'local' or 'ray'")
        elif workers == 1:
            processor = make_processor() if todo else None
            for spec in todo:
                run_shard(spec, items, processor, out_dir)
                bar.update(spec.stop - spec.start)
        else:
            _run_pool(todo, items, make_processor, out_dir, workers, bar)
    return merge_shards(out_dir, specs, len(items), len(specs) - len(todo))


def _run_pool(
    todo: list[ShardSpec],
    items: Sequence[Any],
    make_processor: Callable[[], ItemProcessor],
    out_dir: Path,
    workers: int,
    bar: tqdm,
) -> None:
    # fork hands the items to the workers without pickling them; spawn where fork is missing.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_init_worker,
        initargs=(make_processor, items, out_dir, os.getpid()),
    )
    try:
        futures = {pool.submit(_work, spec): spec for spec in todo}
        for future in as_completed(futures):
            spec = futures[future]
            try:
                future.result()
            except Exception as err:
                raise RuntimeError(f"{spec.name} (items {spec.start}-{spec.stop - 1}) failed: {err}") from err
            bar.update(spec.stop - spec.start)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
