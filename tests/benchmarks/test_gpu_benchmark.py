"""The GPU benchmark's CPU smoke mode runs end to end and ends with its headline JSON line."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("ttft_ms", "decode_tokens_per_s", "decode_fraction_of_bound", "train_tokens_per_s", "train_mfu")


def test_cpu_smoke_run(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--preset", "tiny",
                           "--small", "--json", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    headline = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in KEYS:
        assert isinstance(headline[key], (int, float)) and headline[key] > 0, (key, headline[key])
    assert headline["decode_path"].startswith("nexus_o.inference.text")
    assert headline["hf_generate_decode_tokens_per_s"] > 0
    assert headline["batched_decode_tokens_per_s"]["2"] > 0  # two prompts decoded together
    results = json.loads((tmp_path / "gpu_results.json").read_text())
    assert all(s["status"] == "ok" for s in results["sections"].values()), results["sections"]
    variants = results["sections"]["train"]["variants"]
    assert {"frozen_backward", "baseline", "chunked_ce"} <= set(variants)
    assert all(v["status"] == "ok" for v in variants.values())
    packed = results["sections"]["train_packed"]
    assert set(packed["variants"]) == {"padded_mixed", "packed_mixed"}
    assert packed["packed_shape"][0] * packed["packed_shape"][1] < packed["padded_shape"][0] * packed["padded_shape"][1]
    # the same samples: padded and packed give the same loss on the first step
    padded_loss, packed_loss = (packed["variants"][k]["losses"][0] for k in ("padded_mixed", "packed_mixed"))
    assert abs(padded_loss - packed_loss) < 1e-2 * abs(padded_loss)
    # the same weights and batch: every variant starts from the same loss
    first = [v["losses"][0] for v in variants.values()]
    assert max(first) - min(first) < 1e-2 * abs(first[0])
