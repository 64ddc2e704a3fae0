"""The main job's figures against its targets on this machine.

Runs `nexus-o quickstart` into a fresh folder (or, with --report, reads a finished run's
report.json) and prints, against the targets of the honest-tiny-world issue:
- wall time <= 15 minutes after set-up;
- asr_wer <= 0.15 on unseen voices (and, beside it, on test texts seen / unseen in training);
- vqa_accuracy >= 0.9 on unseen images;
- tts_wer on word pairs never spoken in training within 0.10 of the judge's floor (the same
  judge on the real voice's recordings of the same texts), under Whisper's normaliser;
then the judge table: each judge x normalisation, model beside floor; and the time of each step.
Run: python benchmarks/quickstart.py [--out runs/bench-quickstart] [--report PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

GAP_TARGET = 0.10  # tts_wer may sit at most this far above its floor (Whisper normaliser)


def _targets(report: dict) -> list[tuple[str, float | None, str, float]]:
    """(figure, value, op, target) rows."""
    model, floor = report.get("tts_wer_whisper_norm"), report.get("tts_wer_reference_whisper_norm")
    gap = None if model is None or floor is None else round(model - floor, 4)
    return [("minutes", report.get("minutes"), "<=", 15.0), ("asr_wer", report.get("asr_wer"), "<=", 0.15),
            ("vqa_accuracy", report.get("vqa_accuracy"), ">=", 0.9),
            ("tts_gap_whisper_norm", gap, "<=", GAP_TARGET)]


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
    print(f"{'figure':<24}{'value':>10}  target")
    for key, value, op, target in _targets(report):
        met = value is not None and (value <= target if op == "<=" else value >= target)
        shown = "n/a" if value is None else f"{value:.4g}"
        print(f"{key:<24}{shown:>10}  {op} {target}  {'met' if met else 'NOT met'}")
    for key in ("asr_wer_seen_texts", "asr_wer_unseen_texts"):
        if report.get(key) is not None:
            print(f"{key:<24}{report[key]:>10.4g}")
    print("\ntts judge table (rates; 'reference' = the judge on the real voice's recordings = the floor)")
    print(f"{'judge':<18}{'normaliser':<18}{'model':>8}{'floor':>8}{'gap':>8}")
    for judge, protocols in report.get("tts_judges", {}).items():
        for protocol, row in protocols.items():
            if isinstance(row, dict):
                print(f"{judge:<18}{protocol:<18}{row['model']:>8.4f}{row['reference']:>8.4f}{row['gap']:>8.4f}")
    print("\nseconds per step:", json.dumps(report.get("seconds_per_step", {})))


if __name__ == "__main__":
    main()
