"""DeepSpeed ZeRO-3 on two CPU processes through `nexus-o train` (skipped without deepspeed).

Both ranks see image rows (audio touched with zeros). With ranks holding different modalities
ZeRO-3 still hangs at the second step on CPU (its parameter prefetch follows the first step's
module order); FSDP2 covers that case (tests/train/test_fsdp.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

pytest.importorskip("deepspeed")
ROOT = Path(__file__).resolve().parents[2]


def test_zero3_two_processes_trains_and_saves_whole_weights(tmp_path, tiny_world):
    base = tiny_world["vqa"].parent
    rows = [json.loads(line) for line in tiny_world["vqa"].read_text().splitlines()]
    for row in rows:
        row["images"] = [str(base / p) for p in row["images"]]
    manifest = tmp_path / "vqa.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"stage": "stage2_sft", "model": {"preset": "tiny"}, "output_dir": str(tmp_path / "out"),
           "phases": [{"name": "sft", "train": [str(manifest)], "max_steps": 2}], "batch_size": 1,
           "logging_steps": 1, "save_steps": 2, "trainable": ["audio_adapter", "vision_adapter", "llm"],
           "deepspeed": str(ROOT / "configs" / "deepspeed" / "zero3.json")}
    path = tmp_path / "zero3.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29571", "-m", "nexus_o.cli", "train", "--config", str(path)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "out"
    assert (out / "sft" / "checkpoint-2" / "global_step2").is_dir()  # DeepSpeed's own partitioned state
    history = json.loads((out / "sft" / "log_history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == [1, 2]
    # ZeRO-3 parameters are empty placeholders outside forward: the final model must be gathered
    final, ckpt = load_file(out / "final" / "model.safetensors"), load_file(out / "sft" / "checkpoint-2" / "model.safetensors")
    assert final.keys() == ckpt.keys()
    for key, value in final.items():
        assert value.numel() > 0 and torch.equal(value, ckpt[key]), key
