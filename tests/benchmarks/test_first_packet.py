"""The first-packet benchmark runs on CPU and ends with its JSON line; streamed speech starts
before the text is done and before the text-then-speech mode's (same weights)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cpu_run_reports_each_term():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "first_packet.py"), "--device", "cpu",
                           "--preset", "tiny", "--small", "--reply-tokens", "24", "--chunk-frames", "4",
                           "--runs", "1", "--frames", "16", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("first_audio_ms", "text_done_ms", "decoder_steps_per_s_b1", "decoder_steps_per_s_b8"):
        assert out[key] > 0, key
    assert out["reply_tokens"] == 24
    assert out["terms"]["tokens_before_first_speech_step"] == 3
    assert out["terms"]["decoder_steps_to_first_chunk"] == 4 + 8 - 1
    assert out["first_audio_ms"] < out["text_done_ms"]
    assert out["text_then_speech"]["tokens_before_first_audio"] == 24  # it waited for the whole text
    assert out["tokens_before_first_audio"] < 24
