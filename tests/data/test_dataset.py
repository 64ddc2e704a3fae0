"""Manifests as Hugging Face datasets: map-style and streaming agree; bad lines never stop an epoch."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from nexus_o.data.dataset import load_manifest_dataset
from nexus_o.data.manifest import ManifestError, RejectLog, iter_raw_lines, split_manifest
from tests.data.media_files import asr_line, write_manifest, write_mp4, write_png, write_wav


@pytest.fixture
def manifest(tmp_path):
    for name, seconds in (("a", 0.5), ("b", 1.0), ("c", 0.25)):
        write_wav(tmp_path / f"{name}.wav", seconds=seconds, rate=8000)
    write_png(tmp_path / "i.png")
    write_mp4(tmp_path / "v.mp4")
    np.save(tmp_path / "codes.npy", np.ones((4, 6), dtype=np.int32))
    tri = {"messages": [{"role": "user", "content": "<image><video><audio>Answer by voice."},
                        {"role": "assistant", "content": "ok"}],
           "images": ["i.png"], "videos": ["v.mp4"], "audios": ["c.wav"], "speech": {"codes": "codes.npy"},
           "task": "s2s_chat", "id": 7}
    lines = [asr_line("a.wav"), "broken", asr_line("b.wav", text="world"), asr_line("missing.wav"), tri,
             asr_line("a.wav", speech={"codes": [[1, 2, 3], [4, 5, 6]]})]
    return write_manifest(tmp_path / "m.jsonl", lines)


def test_map_style_and_streaming_yield_the_same_samples(manifest, tmp_path):
    map_rejects, stream_rejects = RejectLog(), RejectLog()
    ds = load_manifest_dataset(manifest, on_error="skip", rejects=map_rejects, cache_dir=tmp_path / "cache")
    stream = load_manifest_dataset(manifest, streaming=True, on_error="skip", rejects=stream_rejects)
    rows = list(stream)
    assert [ds[i] for i in range(len(ds))] == rows
    assert [r["line"] for r in rows] == [1, 3, 5, 6]
    assert [(i.line, i.reason) for i in map_rejects.issues] == [(i.line, i.reason) for i in stream_rejects.issues]
    assert [i.line for i in map_rejects.issues] == [2, 4]
    tri = rows[2]
    assert tri["id"] == "7" and tri["task"] == "s2s_chat"
    assert tri["images"] == [str(tmp_path / "i.png")]  # resolved to absolute
    assert tri["speech_codes_file"] == str(tmp_path / "codes.npy")
    assert rows[0]["audio_seconds"] == pytest.approx(0.5)
    assert rows[3]["speech_codes"] == [[1, 2, 3], [4, 5, 6]]


def test_raise_mode_stops_before_any_row(manifest, tmp_path):
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: invalid JSON .*and 1 more bad line"):
        load_manifest_dataset(manifest, cache_dir=tmp_path / "cache")
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: invalid JSON"):
        load_manifest_dataset(manifest, streaming=True)


def test_cache_is_reused_and_refreshed_when_the_manifest_changes(tmp_path):
    write_wav(tmp_path / "a.wav")
    path = write_manifest(tmp_path / "m.jsonl", [asr_line("a.wav")])
    first = load_manifest_dataset(path, cache_dir=tmp_path / "cache")
    again = load_manifest_dataset(path, cache_dir=tmp_path / "cache")
    assert first.cache_files and first.cache_files == again.cache_files
    write_manifest(path, [asr_line("a.wav"), asr_line("a.wav", text="two")])
    os.utime(path, ns=(1, 1))  # a different stamp even on coarse-mtime filesystems
    assert len(load_manifest_dataset(path, cache_dir=tmp_path / "cache")) == 2
    assert len(load_manifest_dataset(path, use_cache=False)) == 2


def test_shards_keep_line_numbers_and_order(tmp_path):
    write_wav(tmp_path / "a.wav", seconds=0.1)
    lines = [asr_line("a.wav", text="x" * (n % 7 + 1)) for n in range(20)]
    lines[13] = "bad"
    path = write_manifest(tmp_path / "m.jsonl", lines)
    shards = split_manifest(path, 3)
    assert len(shards) == 3 and shards[0].start == 0 and shards[-1].end == path.stat().st_size
    numbers = [n for shard in shards for n, _, _ in iter_raw_lines(path, shard)]
    assert numbers == list(range(1, 21))
    rejects = RejectLog()
    ds = load_manifest_dataset(path, on_error="skip", rejects=rejects, num_proc=2, cache_dir=tmp_path / "cache")
    assert ds["line"][:] == [n for n in range(1, 21) if n != 14]
    assert [i.line for i in rejects.issues] == [14]
    stream = load_manifest_dataset(path, streaming=True, on_error="skip", num_proc=3)
    assert stream.num_shards == 3
    assert [r["line"] for r in stream] == ds["line"][:]
