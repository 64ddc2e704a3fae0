"""The main job's figures against its targets on this machine.

Runs `nexus-o quickstart` into a fresh folder (or, with --report, reads a finished run's
report.json) and prints wall time, ASR WER, VQA accuracy and TTS WER beside the targets of the
training issue: within 15 minutes after set-up, asr_wer <= 0.15, vqa_accuracy >= 0.9,
tts_wer <= 0.3; plus the time each step took.
Run: python benchmarks/quickstart.py [--out runs/bench-quickstart] [--report PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

TARGETS = {"minutes": ("<=", 15.0), "asr_wer": ("<=", 0.15), "vqa_accuracy": (">=", 0.9), "tts_wer": ("<=", 0.3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("runs/bench-quickstart"))
    parser.add_argument("--report", type=Path, default=None, help="read this report.json instead of running")
    args = parser.parse_args()
    if args.report is None:
        from nexus_o.quickstart import run_quickstart

        shutil.rmtree(args.out, ignore_errors=True)  # a fresh run: nothing cached
        report = run_quickstart(args.out)
    else:
        report = json.loads(args.report.read_text())
    print(f"{'figure':<14}{'value':>10}  target")
    for key, (op, target) in TARGETS.items():
        value = report.get(key)
        met = value is not None and (value <= target if op == "<=" else value >= target)
        shown = "n/a" if value is None else f"{value:.4g}"
        print(f"{key:<14}{shown:>10}  {op} {target}  {'met' if met else 'NOT met'}")
    if (floor := report.get("tts_wer_reference")) is not None:
        # The judge (Whisper tiny.en) on the reference voice's own recordings of the same texts.
        print(f"{'tts_wer_reference':<14}{floor:>7.4g}  (the ASR judge on the real voice: the floor)")
    print("seconds per step:", json.dumps(report.get("seconds_per_step", {})))


if __name__ == "__main__":
    main()
