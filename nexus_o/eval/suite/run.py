"""`run_suite`: the paper's audio benchmarks found under a data root, each through `run_eval`.

    run_suite("/ckpt/nexus-o-7b", "/data/bench", "runs/paper", whisper_large_v3="/models/whisper-large-v3",
              paraformer_zh="/models/paraformer-zh")

Every benchmark's files are read first (a malformed one stops the run before the model loads),
its items written as a manifest to OUT/manifests/<benchmark>.jsonl (a ready manifest is used in
place), then run by `run_eval` into OUT/runs/<benchmark>/ (predictions cached there: a rerun
resumes). A benchmark without data, or a tts benchmark without its judge, is skipped with the
reason. OUT/suite.json and OUT/suite.md put each figure beside the paper's, with its judge and
normaliser.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from nexus_o.bundle.loading import load_model
from nexus_o.bundle.omni import OmniModel
from nexus_o.eval.runner import run_eval
from nexus_o.eval.suite.catalogue import NORMALISERS, NOT_RUN, Benchmark, get_benchmarks
from nexus_o.eval.suite.judges import tts_judge
from nexus_o.eval.suite.report import write_suite_report
from nexus_o.eval.tasks import EvalError

REFERENCE_JUDGE = "none: scored against the references"


def _prepare(bench: Benchmark, data_root: Path, out_dir: Path) -> tuple[Path | None, str | None]:
    """(manifest path, None) or (None, why the benchmark is skipped)."""
    where = bench.path(data_root)
    if not where.exists():
        return None, f"no data: expected {where} (layout in docs/eval-suite.md)"
    if bench.read is None:
        return where, None
    lines = bench.read(where)
    if not lines:
        raise EvalError(f"{where}: the {bench.title} files hold no items")
    manifest = out_dir / "manifests" / f"{bench.name}.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return manifest, None


def _entry(bench: Benchmark, **fields) -> dict:
    return {"title": bench.title, "task": bench.task, "lang": bench.lang, "table": bench.table,
            "column": bench.column, "normaliser": NORMALISERS[(bench.task, bench.lang)], **fields}


def _score(bench: Benchmark, task_result: dict) -> dict:
    """The benchmark's figure from one `run_eval` task result."""
    if task_result["status"] != "ok":
        return {"status": task_result["status"], "reason": task_result["reason"], "items": task_result["items"]}
    groups = {g["lang"]: g for g in task_result["scores"]}
    if set(groups) != {bench.lang}:
        raise EvalError(f"{task_result['file']}: {bench.title} items must all be {bench.lang}, found languages "
                        f"{sorted(groups)}")
    group = groups[bench.lang]
    return {"status": "ok", "metric": group["metric"], "score": group["score"], "items": group["items"],
            "details": group["details"], "predictions": task_result["predictions"]}


def run_suite(model_or_dir, data_root: str | Path, out_dir: str | Path, *, whisper_large_v3: str | Path | None = None,
              paraformer_zh: str | Path | None = None, judges: dict | None = None, benchmarks: str | None = None,
              limit: int | None = None, batch_size: int = 4, max_new_tokens: int = 256,
              max_speech_seconds: float = 30.0, model_name: str | None = None, progress: bool = True) -> dict:
    """Run the paper's benchmarks found under `data_root`; returns (and writes OUT/suite.json) the results.

    model_or_dir: checkpoint folder, preset name or an `OmniModel`. whisper_large_v3 / paraformer_zh:
    the Seed-TTS judges' folders (tts en / zh). judges: {lang: ASR object} instead of folders.
    benchmarks: comma-separated subset of the catalogue's names. limit: first N items of each.
    Returns {"model", "data_root", "settings", "benchmarks": {name: {..., "status", "score" or
    "reason", "judge", "normaliser"}}, "not_run": {...}, "created"}.
    """
    data_root, out_dir = Path(data_root).expanduser(), Path(out_dir)
    if not data_root.is_dir():
        raise FileNotFoundError(f"data root {data_root} is not a folder")
    folders = {"en": whisper_large_v3, "zh": paraformer_zh}
    entries, todo = {}, []
    for bench in get_benchmarks(benchmarks):
        manifest, reason = _prepare(bench, data_root, out_dir)
        judge = None
        if reason is None and bench.task == "tts":
            judge, reason = tts_judge(bench.lang, folders[bench.lang], judges)
        judge_text = judge.describe() if judge else (REFERENCE_JUDGE if bench.task != "tts" else "none")
        entries[bench.name] = _entry(bench, judge=judge_text, judge_info=judge.to_dict() if judge else None,
                                     **({"status": "skipped", "reason": reason} if reason else {"manifest": str(manifest)}))
        if reason is None:
            todo.append((bench, manifest, judge))
    if isinstance(model_or_dir, OmniModel):
        label, model = model_name or "in-memory model", model_or_dir
    else:
        label, model = model_name or str(model_or_dir), None
    if todo and model is None:
        model = load_model(model_or_dir)
    for bench, manifest, judge in todo:
        result = run_eval(model, [f"{bench.task}={manifest}"], None, out_dir / "runs" / bench.name, limit=limit,
                          batch_size=batch_size, max_new_tokens=max_new_tokens,
                          asr_backend=judge.backend if judge else "whisper-tiny.en", max_speech_seconds=max_speech_seconds,
                          model_name=label, progress=progress)
        entries[bench.name].update(_score(bench, result["tasks"][bench.task]))
    results = {"model": label, "data_root": str(data_root),
               "settings": {"batch_size": batch_size, "max_new_tokens": max_new_tokens, "limit": limit,
                            "max_speech_seconds": max_speech_seconds},
               "benchmarks": entries,
               "not_run": {k: {"title": t, "table": table, "reason": r} for k, (t, table, r) in NOT_RUN.items()},
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_suite_report(results, out_dir)
    return results
