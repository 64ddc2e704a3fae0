"""Two-process DDP on CPU (gloo) through torchrun, with ranks seeing different modalities."""

import json
import os
import subprocess
import sys

import yaml


def test_torchrun_two_processes_gloo(tmp_path, tiny_world):
    # batch size 1 with alternating audio-only and image-only rows: ranks hold different modalities
    mixed = tmp_path / "mixed.jsonl"
    asr = tiny_world["asr"].read_text().splitlines()
    vqa = tiny_world["vqa"].read_text().splitlines()
    base = tiny_world["asr"].parent
    rows = []
    for a, v in zip(asr, vqa):
        for line in (a, v):
            row = json.loads(line)
            for key in ("audios", "images"):
                row[key] = [str(base / p) for p in row.get(key, [])]
            rows.append(json.dumps(row))
    mixed.write_text("\n".join(rows) + "\n")
    cfg = {"stage": "stage2_sft", "model": {"preset": "tiny"}, "output_dir": str(tmp_path / "out"),
           "phases": [{"name": "sft", "train": [str(mixed)], "max_steps": 2}], "batch_size": 1,
           "logging_steps": 1, "save_steps": 2, "trainable": ["audio_adapter", "vision_adapter", "llm"]}
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "nexus_o.cli", "train", "--config", str(path)],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    history = json.loads((tmp_path / "out" / "sft" / "log_history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == [1, 2]
    assert (tmp_path / "out" / "final" / "model.safetensors").is_file()
