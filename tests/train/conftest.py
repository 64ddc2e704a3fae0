"""A tiny on-disk world for training tests (a few ASR, VQA and speech-target samples), and how
the distributed tests launch their ranks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image, ImageDraw

from tests.conftest import tone

TINY_DECODER = {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "num_codebooks": 4,
                "codebook_size": 67, "codec_entries": 64, "llm_hidden_size": 64, "max_steps": 256}


def write_tiny_world(root: Path, n: int = 8) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    asr, vqa, tts = [], [], []
    colours = ["red", "blue", "green", "yellow"]
    for i in range(n):
        sf.write(root / f"a{i}.wav", tone(0.4 + 0.1 * i, freq=200 + 40 * i), 16000)
        img = Image.new("RGB", (56, 56), "white")
        ImageDraw.Draw(img).rectangle([14, 14, 42, 42], fill=colours[i % 4])
        img.save(root / f"i{i}.png")
        np.save(root / f"c{i}.npy", rng.integers(0, 64, (4, 5 + i)).astype(np.int64))
        asr.append({"messages": [{"role": "user", "content": "<audio>Transcribe."},
                                 {"role": "assistant", "content": f"digit {i}"}], "audios": [f"a{i}.wav"]})
        vqa.append({"messages": [{"role": "user", "content": "<image>What colour is the square?"},
                                 {"role": "assistant", "content": colours[i % 4]}], "images": [f"i{i}.png"]})
        tts.append({"messages": [{"role": "user", "content": f"Say: digit {i}"},
                                 {"role": "assistant", "content": f"digit {i}"}], "speech": {"codes": f"c{i}.npy"}})
    paths = {}
    for name, rows in (("asr", asr), ("vqa", vqa), ("tts", tts)):
        paths[name] = root / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict[str, Path]:
    return write_tiny_world(tmp_path_factory.mktemp("tiny_world"))


def write_mixed_manifest(tmp_path: Path, world: dict[str, Path]) -> Path:
    """Alternating audio-only and image-only rows (absolute media paths): with batch 1 the ranks of
    a two-process run hold different modalities in some steps."""
    base = world["asr"].parent
    rows = []
    for a, v in zip(world["asr"].read_text().splitlines(), world["vqa"].read_text().splitlines()):
        for line in (a, v):
            row = json.loads(line)
            for key in ("audios", "images"):
                row[key] = [str(base / p) for p in row.get(key, [])]
            rows.append(json.dumps(row))
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def free_port() -> int:
    """A TCP port nobody listens on now (the rendezvous of one torchrun launch)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(args: list[str], env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run a torchrun command line; a run past `timeout` seconds (a collective that hangs) is killed
    with all its ranks and raises `TimeoutError` with the end of its output."""
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: the ranks die with it
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise TimeoutError(f"{args[-3:]} ran past {timeout} s (hung?):\n{out[-2000:]}\n{err[-3000:]}") from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)
