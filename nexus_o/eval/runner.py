"""`nexus-o eval`: run a model over benchmark manifests, cache its predictions, score, report.

    run_eval("tiny", "asr,vqa", "bench/", "runs/eval")   # or run_eval(load_model(...), ...)

- Tasks come from names mapped to files in the data folder (`asr` -> `DATA/asr.jsonl`, likewise
  `s2tt`, `sqa`, `tts`, `vqa`) or from `task=path` pairs; the line format is in `nexus_o.eval.tasks`.
- Text tasks generate greedily in batches; tts asks the model to speak (`OmniChat`, one item at a
  time), saves the audio under `OUT/audio/tts/` and transcribes it with the ASR backend.
- Every prediction is appended to `OUT/predictions/<task>.jsonl` as it is made (flushed and
  fsync'd after each batch), with its manifest line and a fingerprint of the item. A rerun with the
  same OUT reads the cache and generates only what is missing: an interrupted run resumes, a
  finished task is only rescored. A cached line whose fingerprint no longer matches its item (the
  benchmark changed) is an error, as is a rerun with other generation settings (`OUT/run.json`).
- An item whose prompt does not fit the model's context (`ContextLengthError`, checked before any
  model work) is skipped, not fatal: its record carries `"skipped": reason` and an empty
  prediction, which scores as a wrong answer (so skipping never raises a score), and the task's
  results count it under `skipped` with its manifest lines.
- Scores go to `OUT/results.json` and `OUT/results.md` (beside the paper's figures; `report`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from nexus_o.bundle.loading import load_model
from nexus_o.bundle.omni import OmniModel
from nexus_o.data.manifest import read_manifest
from nexus_o.eval.metrics import MetricInputError
from nexus_o.eval.report import write_report
from nexus_o.eval.tasks import TASKS, EvalError, EvalItem, Task, get_task
from nexus_o.inference.limits import ContextLengthError
from nexus_o.inference.text import generate_text
from nexus_o.speech.asr import get_asr_backend

PredictFn = Callable[[list[EvalItem]], list[dict]]
SPEECH_SETTINGS = ("asr_backend", "max_speech_seconds")


def parse_task_specs(tasks: str | Sequence[str], data_dir: str | Path | None) -> list[tuple[Task, Path]]:
    """"asr,tts" or ["asr", "vqa=my/vqa.jsonl"] -> [(task, manifest path)], files checked to exist."""
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    if not names:
        raise EvalError(f"no task given; expected a comma-separated list of {', '.join(TASKS)}")
    specs, seen = [], set()
    for spec in names:
        name, sep, path = spec.partition("=")
        task = get_task(name.strip())
        if sep:
            manifest = Path(path.strip()).expanduser()
        elif data_dir is None:
            raise EvalError(f"task {name!r} has no file: pass a data folder (--data DIR) or {name}=PATH")
        else:
            manifest = Path(data_dir) / f"{task.name}.jsonl"
        if task.name in seen:
            raise EvalError(f"task {task.name!r} is given twice; one file per task")
        if not manifest.is_file():
            raise FileNotFoundError(f"benchmark file for task {task.name!r} not found: {manifest}")
        seen.add(task.name)
        specs.append((task, manifest))
    return specs


def load_items(task: Task, manifest: Path, limit: int | None = None) -> list[EvalItem]:
    """The first `limit` (default all) items of a benchmark manifest; errors name file:line."""
    items = []
    for line, sample in read_manifest(manifest, media="exists"):
        if limit is not None and len(items) >= limit:
            break
        items.append(task.item(line, sample, f"{manifest}:{line}"))
    if not items:
        raise EvalError(f"{manifest} holds no benchmark items")
    return items


class PredictionCache:
    """Append-only JSONL of predictions, one line per item: {"line", "id", "key", "prediction", ...}."""

    def __init__(self, path: Path):
        self.path = path

    def load(self, items: Sequence[EvalItem], manifest: Path) -> dict[int, dict]:
        """Cached records by manifest line. A torn last line (a crash mid-write) is cut off."""
        if not self.path.is_file():
            return {}
        by_line = {item.line: item for item in items}
        records, good_bytes, torn = {}, 0, False
        with open(self.path, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    record = json.loads(raw) if raw.endswith(b"\n") else None
                except json.JSONDecodeError:
                    raise EvalError(f"{self.path}:{number}: not valid JSON; delete the file to recompute "
                                    f"the task") from None
                if record is None:
                    torn = True
                    break
                if not (isinstance(record, dict) and isinstance(record.get("line"), int)
                        and isinstance(record.get("prediction"), str)):
                    raise EvalError(f"{self.path}:{number}: not a prediction record (needs an int 'line' and a "
                                    f"string 'prediction'); delete the file to recompute the task")
                item = by_line.get(record.get("line"))
                if item is not None and record.get("key") != item.key:
                    raise EvalError(f"{self.path}:{number}: the cached prediction for {manifest}:{item.line} "
                                    f"was made for a different item (the benchmark changed); delete "
                                    f"{self.path} or use another output folder")
                records[record["line"]] = record
                good_bytes += len(raw)
        if torn:
            with open(self.path, "r+b") as f:
                f.truncate(good_bytes)
        return records

    def append(self, f, items: Sequence[EvalItem], outputs: Sequence[dict]) -> None:
        """Write one batch and make it durable before the next batch starts."""
        for item, out in zip(items, outputs, strict=True):
            record = {"line": item.line, "id": item.id, "key": item.key, **out}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def skipped(err: ContextLengthError) -> dict:
    """The record of an item the model cannot take: an empty prediction and the reason."""
    return {"prediction": "", "skipped": f"context_length_exceeded: {err}"}


def text_predictor(model, processor, max_new_tokens: int) -> PredictFn:
    """Batched greedy replies: {"prediction": text} per item; items too long for the context are
    skipped (`skipped`) and the rest of the batch goes on."""
    def predict(items: list[EvalItem]) -> list[dict]:
        outputs: list[dict | None] = [None] * len(items)
        todo = list(range(len(items)))
        while todo:
            try:
                texts = generate_text(model, processor, [items[i].prompt for i in todo], max_new_tokens)
            except ContextLengthError as err:  # checked before any model work: drop the item, retry the rest
                outputs[todo.pop(err.index or 0)] = skipped(err)
                continue
            for i, text in zip(todo, texts, strict=True):
                outputs[i] = {"prediction": text}
            break
        return outputs
    return predict


class SpeechPredictor:
    """tts: the model speaks the reference text (text in, speech out, as the Seed-TTS protocol gives a
    TTS system its text): its reply to the prompt is set to the reference and its speech decoder
    renders it; the audio is saved as OUT/audio/tts/line<N>.wav and transcribed by the ASR backend.

    Returns {"prediction": transcript, "reply_text", "audio", "audio_seconds"} per item. The ASR
    backend is built on first use (a finished task never loads it) and checked against every
    item's language before anything is generated.
    """

    def __init__(self, omni: OmniModel, asr_backend, items: Sequence[EvalItem], manifest: Path, out_dir: Path,
                 max_new_tokens: int, max_speech_seconds: float):
        self.chat = omni.session(max_new_tokens=max_new_tokens, max_speech_seconds=max_speech_seconds)
        self.asr_backend, self.items, self.manifest = asr_backend, items, manifest
        self.out_dir = out_dir
        self._asr = None

    def _load_asr(self):
        asr = self.asr_backend
        if isinstance(asr, str):
            asr = get_asr_backend(asr)
        supported = getattr(asr, "languages", None)
        for item in self.items if supported is not None else ():
            if item.lang not in supported:
                raise EvalError(f"{self.manifest}:{item.line}: a {item.lang} text, but ASR backend "
                                f"{getattr(asr, 'name', '?')!r} transcribes {tuple(supported)}; pass another "
                                f"ASR backend (e.g. whisper-base, multilingual)")
        return asr

    def __call__(self, items: list[EvalItem]) -> list[dict]:
        import soundfile as sf

        if self._asr is None:
            self._asr = self._load_asr()
        outputs = []
        for item in items:
            try:
                reply = self.chat.speak(item.prompt, item.reference)
            except ContextLengthError as err:
                outputs.append({**skipped(err), "reply_text": item.reference, "audio": None, "audio_seconds": 0.0})
                continue
            rel = Path("audio") / "tts" / f"line{item.line}.wav"
            (self.out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(self.out_dir / rel, reply.audio, reply.sample_rate)
            # No audio at all scores as an utterance with every word deleted, not a crash.
            text = (self._asr.transcribe(reply.audio, reply.sample_rate, language=item.lang).text
                    if reply.audio.size else "")
            outputs.append({"prediction": text, "reply_text": reply.text, "audio": str(rel),
                            "audio_seconds": round(reply.audio.size / reply.sample_rate, 3)})
        return outputs


def speech_unavailable(omni: OmniModel) -> str | None:
    """Why the bundle `omni` cannot be scored on tts, or None when it can speak."""
    if omni.model.speech_decoder is None:
        return "model has no speech output (no speech decoder)"
    if omni.codec is None:
        return "model has no speech output (no codec attached to render its speech codes)"
    return None


def _model_label(model_or_dir, model_name: str | None) -> str:
    if model_name:
        return model_name
    if isinstance(model_or_dir, (str, Path)):
        return str(model_or_dir)
    if isinstance(model_or_dir, OmniModel):
        return getattr(model_or_dir.model.config, "_name_or_path", "") or "in-memory model"
    raise TypeError(f"model_or_dir must be a checkpoint folder, a preset name or an OmniModel, "
                    f"got {type(model_or_dir).__name__}")


def _load_model(model_or_dir) -> OmniModel:
    omni = model_or_dir if isinstance(model_or_dir, OmniModel) else load_model(model_or_dir)
    return omni.eval()


def _check_settings(out_dir: Path, settings: dict) -> None:
    """Cached predictions are only reused under the settings that made them."""
    path, predictions = out_dir / "run.json", out_dir / "predictions"
    if path.is_file() and predictions.is_dir() and any(predictions.iterdir()):
        old = json.loads(path.read_text())
        speech_keys = () if (predictions / "tts.jsonl").is_file() else SPEECH_SETTINGS  # only tts uses them
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v and k not in speech_keys}
        if diff:
            said = "; ".join(f"{k}: cached {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise EvalError(f"{out_dir} holds predictions made with other settings ({said}); use another output "
                            f"folder or delete {predictions}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def _run_task(task: Task, manifest: Path, items: list[EvalItem], predict: PredictFn, out_dir: Path,
              batch_size: int, progress: bool) -> dict:
    cache = PredictionCache(out_dir / "predictions" / f"{task.name}.jsonl")
    done = cache.load(items, manifest)
    todo = [item for item in items if item.line not in done]
    start, generated = time.perf_counter(), 0
    if todo:
        cache.path.parent.mkdir(parents=True, exist_ok=True)
        with open(cache.path, "a", encoding="utf-8") as f, \
                tqdm(total=len(items), initial=len(items) - len(todo), desc=f"eval {task.name}", unit="item",
                     disable=not progress) as bar:
            for k in range(0, len(todo), batch_size):
                batch = todo[k:k + batch_size]
                try:
                    outputs = predict(batch)
                except (ValueError, FileNotFoundError) as err:
                    raise EvalError(f"{manifest}: line(s) {[i.line for i in batch]}: {err}") from err
                cache.append(f, batch, outputs)
                done.update({item.line: out for item, out in zip(batch, outputs)})
                generated += len(batch)
                bar.update(len(batch))
    try:
        scores = task.score(items, [done[item.line]["prediction"] for item in items])
    except MetricInputError as err:
        raise EvalError(f"{task.name} ({manifest}): {err}") from err
    skipped_lines = [item.line for item in items if done[item.line].get("skipped")]
    return {"status": "ok", "title": task.title, "file": str(manifest), "items": len(items),
            "generated": generated, "cached": len(items) - generated,
            "skipped": len(skipped_lines), "skipped_lines": skipped_lines,
            "seconds": round(time.perf_counter() - start, 3), "scores": scores,
            "predictions": str(cache.path.relative_to(out_dir))}


def run_eval(model_or_dir, tasks: str | Sequence[str], data_dir: str | Path | None, out_dir: str | Path, *,
             batch_size: int = 4, limit: int | None = None, max_new_tokens: int = 64,
             asr_backend="whisper-tiny.en", max_speech_seconds: float = 30.0, model_name: str | None = None,
             progress: bool = True) -> dict:
    """Evaluate a model on benchmark manifests; returns (and writes to OUT/results.json) the results.

    model_or_dir: a checkpoint folder, a preset name ("tiny"), or an already loaded `OmniModel`.
    tasks: "asr,s2tt,sqa,tts,vqa", a list of names, or "task=path" entries. data_dir: folder of
    `<task>.jsonl` files (None when every task names its path). limit: first N items of each task.
    asr_backend: a `get_asr_backend` name, or an object with `transcribe(wav, rate, language)` (tts).
    model_name: label for an in-memory model in the reports.
    Returns {"model", "settings", "tasks": {name: {"status": "ok", "scores": [per language], ...}
    or {"status": "skipped", "reason"}}, "created"}.
    """
    if batch_size < 1 or (limit is not None and limit < 1):
        raise EvalError(f"batch_size and limit must be positive, got batch_size={batch_size}, limit={limit}")
    out_dir = Path(out_dir)
    specs = parse_task_specs(tasks, data_dir)
    items = {task.name: load_items(task, manifest, limit) for task, manifest in specs}  # bad data fails first
    label = _model_label(model_or_dir, model_name)
    asr_name = asr_backend if isinstance(asr_backend, str) else getattr(asr_backend, "name", type(asr_backend).__name__)
    settings = {"model": label, "max_new_tokens": max_new_tokens, "asr_backend": asr_name,
                "max_speech_seconds": max_speech_seconds}
    _check_settings(out_dir, settings)
    omni = _load_model(model_or_dir)
    results = {"model": label, "settings": settings, "tasks": {}}
    for task, manifest in specs:
        task_items = items[task.name]
        if task.speech_output and (reason := speech_unavailable(omni)) is not None:
            results["tasks"][task.name] = {"status": "skipped", "reason": reason, "title": task.title,
                                           "file": str(manifest), "items": len(task_items)}
            continue
        if task.speech_output:
            predict = SpeechPredictor(omni, asr_backend, task_items, manifest, out_dir, max_new_tokens,
                                      max_speech_seconds)
        else:
            predict = text_predictor(omni.model, omni.processor, max_new_tokens)
        results["tasks"][task.name] = _run_task(task, manifest, task_items, predict, out_dir, batch_size, progress)
    results["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_report(results, out_dir)
    return results

