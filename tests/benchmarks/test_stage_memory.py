"""The stage-memory table counts the 7B preset's states exactly and shards them as it says."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stage_memory_table(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stage_memory.py"), "--gpus", "1,8", "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(table) == {"stage1_align", "stage2_sft", "stage3_speech"}
    stage2 = table["stage2_sft"]
    assert 7.5e9 < stage2["trainable_params"] < 7.9e9 and 8.9e9 < stage2["trainable_params"] + stage2["frozen_params"] < 9.2e9
    # one GPU, ZeRO-3: 2 bytes a parameter + 14 a trainable one + two bf16 layers + the measured activations
    states = 2 * (stage2["trainable_params"] + stage2["frozen_params"]) + 14 * stage2["trainable_params"]
    assert abs(stage2["zero3"]["1"] * 2**30 - states - stage2["activations_gib"] * 2**30) < 1.5 * 2**30
    for row in table.values():
        assert row["zero3"]["8"] < row["zero3"]["1"] and row["fsdp2"]["8"] < row["fsdp2"]["1"]
    assert table["stage3_speech"]["activations_gib"] is None  # not measured: not invented
