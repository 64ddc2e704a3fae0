"""Helpers of the lmms-eval tests: benchmark subsets of the tiny world, lmms-eval's plugin metadata,
and a two-round task in lmms-eval's multi-round protocol."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def world_subset(world: Path, out: Path) -> dict[str, Path]:
    """Small benchmark files from the world's test set, media paths absolute: 2 ASR lines, and for
    vqa 2 spoken questions about an image and 2 written ones."""
    out.mkdir(parents=True, exist_ok=True)
    test = world / "test"
    rows = {name: [json.loads(line) for line in (test / f"{name}.jsonl").read_text().splitlines()]
            for name in ("asr", "vqa")}
    picked = {"asr": rows["asr"][:2],
              "vqa": [r for r in rows["vqa"] if "audios" in r][:2] + [r for r in rows["vqa"] if "audios" not in r][:2]}
    files = {}
    for name, lines in picked.items():
        for line in lines:
            for key in ("images", "audios"):
                if key in line:
                    line[key] = [str((test / p).resolve()) for p in line[key]]
        files[name] = out / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in lines))
    return files


def entry_point_site(folder: Path) -> Path:
    """A folder holding the distribution metadata `pip install` writes for this package's
    ``lmms_eval.models`` entry points (read from pyproject.toml), for `sys.path` / PYTHONPATH.

    The tests use it so that lmms-eval's own entry-point loader is exercised on what pyproject.toml
    declares, whether or not the installed nexus-o metadata is up to date with this checkout.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entry_points = project["entry-points"]["lmms_eval.models"]
    dist = folder / "nexus_o_lmms_plugin-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nexus-o-lmms-plugin\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        "[lmms_eval.models]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return folder


ROUNDS_YAML = """task: nexus_o_rounds
dataset_path: json
dataset_kwargs:
  data_files:
    test: rounds.jsonl
test_split: test
output_type: generate_until_multi_round
doc_to_visual: !function rounds_utils.doc_to_visual
doc_to_text: !function rounds_utils.doc_to_text
doc_to_target: answer
process_results: !function rounds_utils.process_results
generation_kwargs:
  max_new_tokens: 3
  do_sample: false
metric_list:
  - metric: rounds
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

ROUNDS_UTILS = '''
def doc_to_visual(doc):
    return [doc["image"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None, previous_output=None, round_idx=None, previous_round_info=None):
    if round_idx is None:
        return doc["question"]
    seen = (previous_round_info or {}).get("seen", 0)
    if round_idx == doc["rounds"]:
        return None, None, True, previous_output, None
    return [doc["image"]], f"Round {round_idx} after {seen}: you said {previous_output[-1]!r}.", False, \\
        previous_output, {"seen": round_idx}


def process_results(doc, results):
    return {"rounds": len(results[0])}
'''


def rounds_task(folder: Path, image: str, rounds: tuple[int, ...] = (2, 3)) -> Path:
    """A multi-round task over one image: doc k runs rounds[k] rounds, each after round 0 quoting the
    previous reply; its metric is the mean number of replies."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rounds.yaml").write_text(ROUNDS_YAML)
    (folder / "rounds_utils.py").write_text(ROUNDS_UTILS)
    docs = [{"question": f"What is in picture {k}?", "image": image, "rounds": n, "answer": "x"}
            for k, n in enumerate(rounds)]
    (folder / "rounds.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return folder


def expected_rounds(reply, image: str, question: str, rounds: int) -> list[str]:
    """What the multi-round protocol above should produce: reply(conversation) -> text."""
    outputs = [reply(image, question)]
    for k in range(1, rounds):
        outputs.append(reply(image, f"Round {k} after {k - 1}: you said {outputs[-1]!r}."))
    return outputs
