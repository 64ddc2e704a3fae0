"""The sharded runner: shard plan, merge order, crash and kill recovery, engines, summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nexus_o.synth.runner import RunMismatchError, plan_shards
from tests.synth.runner_jobs import ITEMS, run_tones

REPO = Path(__file__).resolve().parents[2]


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file a finished run leaves, by relative path (the bytes of manifests and audio)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("uninterrupted")
    run_tones(out)
    return snapshot(out)


def test_plan_shards_cover_items_in_order():
    shards = plan_shards(10, 4)
    assert [(s.index, s.start, s.stop) for s in shards] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    assert shards[1].name == "shard-00001"
    assert plan_shards(0, 4) == []
    with pytest.raises(ValueError, match="shard_size"):
        plan_shards(10, 0)


def test_outputs_merge_in_item_order_with_rejects_and_summary(reference):
    manifest = [json.loads(line) for line in reference["manifest.jsonl"].decode().splitlines()]
    rejects = [json.loads(line) for line in reference["rejects.jsonl"].decode().splitlines()]
    bad = [i for i, item in enumerate(ITEMS) if item.startswith("bad")]
    assert [r["id"] for r in manifest] == [i for i in range(len(ITEMS)) if i not in bad]
    assert [r["item"] for r in rejects] == bad and {r["reason"] for r in rejects} == {"bad_item"}
    assert sum(name.startswith("audio/shard-") for name in reference) == len(manifest)
    summary = json.loads(reference["summary.json"])
    assert summary["items"] == 40 and summary["shards"] == 10
    assert summary["lines"] == {"manifest": len(manifest), "rejects": len(bad), "review": 0}
    assert summary["stages"] == {"input": 40, "written": len(manifest)}
    assert summary["rejects"] == {"bad_item": len(bad)}
    assert summary["audio_seconds"] == pytest.approx(len(manifest) * 0.1)
    rates = summary["asr_pass_rate"]["fake-asr"]
    assert sum(r["checked"] for r in rates.values()) == len(manifest)
    assert sum(r["passed"] for r in rates.values()) == sum(r["id"] % 2 == 0 for r in manifest)
    assert all(r["pass_rate"] == pytest.approx(r["passed"] / r["checked"], abs=1e-4) for r in rates.values())


def test_process_pool_matches_in_process(tmp_path, reference):
    run_tones(tmp_path, workers=2)
    assert snapshot(tmp_path) == reference


def test_crash_mid_shard_then_resume_gives_the_uninterrupted_output(tmp_path, reference):
    with pytest.raises(RuntimeError, match="injected crash at item 21"):
        run_tones(tmp_path, crash_at=21)  # shards 0-4 finish; shard 5 dies with audio half written
    assert len(list((tmp_path / "shards").glob("*.done"))) == 5
    assert (tmp_path / "audio" / ".shard-00005.partial").is_dir()
    assert not (tmp_path / "manifest.jsonl").exists()
    summary = run_tones(tmp_path)
    assert summary.shards_skipped == 5
    assert snapshot(tmp_path) == reference


def test_killed_process_then_resume_gives_the_uninterrupted_output(tmp_path, reference):
    child = subprocess.Popen([sys.executable, "-m", "tests.synth.runner_jobs", str(tmp_path)], cwd=REPO,
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "shards").glob("*.done")) and time.monotonic() < deadline:
            assert child.poll() is None, "the job ended before any shard was done"
            time.sleep(0.02)
        os.killpg(child.pid, signal.SIGKILL)  # the run and its pool workers, mid-flight
    finally:
        child.wait(timeout=30)
    done = len(list((tmp_path / "shards").glob("*.done")))
    assert 1 <= done < 10
    summary = run_tones(tmp_path)
    assert summary.shards_skipped == done
    assert snapshot(tmp_path) == reference


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_killing_the_runner_alone_kills_its_workers(tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "tests.synth.runner_jobs", str(tmp_path), "0.5"], cwd=REPO,
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 or not list((tmp_path / "audio").glob(".shard-*.partial")):
            assert child.poll() is None and time.monotonic() < deadline, "the job never got its workers going"
            workers = _children(child.pid)
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # the runner only: not its process group
        child.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if _alive(pid)], "workers outlived the runner"
    finally:
        for pid in filter(_alive, workers):  # never leave them behind, even when the test fails
            os.kill(pid, signal.SIGKILL)


def test_a_different_run_into_the_same_folder_is_refused(tmp_path):
    run_tones(tmp_path)
    with pytest.raises(RunMismatchError, match="fingerprint"):
        run_tones(tmp_path, seed=1)
    with pytest.raises(RunMismatchError, match="shard_size"):
        run_tones(tmp_path, shard_size=8)


def test_ray_engine_writes_what_the_local_engine_writes(tmp_path, reference):
    run_tones(tmp_path, engine="ray", workers=2)
    assert snapshot(tmp_path) == reference
