"""Local lmms-eval tasks from `nexus-o eval` benchmark manifests, scored by our metrics.

    names = write_lmms_tasks({"asr": "bench/asr.jsonl", "vqa": "bench/vqa.jsonl"}, "lmms_tasks/")
    # lmms-eval --model nexus_o --tasks nexus_o_asr_en,nexus_o_vqa_en --include_path lmms_tasks/ ...

For each benchmark (asr, s2tt, sqa, vqa; the line format of `nexus_o.eval.tasks`) and each
language in it, `write_lmms_tasks` writes into OUT one lmms-eval task: ``<prefix>_<task>_<lang>.yaml``
and the docs it reads, ``<prefix>_<task>_<lang>.jsonl``, loaded by `datasets`' local ``json``
builder (no hub). A doc holds the item's prompt conversation (media paths made absolute), its
reference and language. The YAML points at this module's functions:

- `doc_to_messages` (lmms-eval's chat mode): the prompt as written, system turns and the media
  in tag order; `doc_to_visual` + `doc_to_text` (simple mode): the media, then the last user
  turn's text (system turns cannot be carried there);
- `process_results` + `aggregate`: the reply is scored with the same task metric as
  `nexus-o eval` (WER / CER with their normalisers, BLEU, answer accuracy), so a figure from
  lmms-eval and one from `nexus-o eval` on the same file agree.

tts has no lmms-eval task: lmms-eval reads text replies, and the Seed-TTS protocol scores speech.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from nexus_o.eval.tasks import EvalError, EvalItem, get_task
from nexus_o.processing.conversation import Conversation, Text

TEXT_TASKS = ("asr", "s2tt", "sqa", "vqa")
LOWER_IS_BETTER = {"wer", "cer"}
FUNCTIONS = "nexus_o.eval.harness.lmms_tasks"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


def metric_name(task: str, lang: str) -> str:
    """The metric lmms-eval reports for a task in a language (wer, cer, bleu, accuracy)."""
    if task == "asr":
        return "cer" if lang == "zh" else "wer"
    return {"s2tt": "bleu", "sqa": "accuracy", "vqa": "accuracy"}[task]


def task_yaml(name: str, docs: str, metric: str, max_new_tokens: int, source: str) -> str:
    """The lmms-eval task YAML (its `!function` tags name this module's functions by import path)."""
    return f"""# Written by nexus_o.eval.harness.lmms_tasks from {source}
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: generate_until
doc_to_messages: !function {FUNCTIONS}.doc_to_messages
doc_to_visual: !function {FUNCTIONS}.doc_to_visual
doc_to_text: !function {FUNCTIONS}.doc_to_text
doc_to_target: reference
process_results: !function {FUNCTIONS}.process_results
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  do_sample: false
metric_list:
  - metric: {metric}
    aggregation: !function {FUNCTIONS}.aggregate
    higher_is_better: {str(metric not in LOWER_IS_BETTER).lower()}
metadata:
  version: 1.0
"""


def write_lmms_tasks(manifests: Mapping[str, str | Path], out_dir: str | Path, *, prefix: str = "nexus_o",
                     limit: int | None = None, max_new_tokens: int = 64) -> list[str]:
    """Write one lmms-eval task per (benchmark, language) into `out_dir`; returns the task names.

    manifests: {task: manifest path}, task one of asr, s2tt, sqa, vqa. limit: first N items of
    each file. Lines are validated as `nexus-o eval` validates them (errors name file:line).
    """
    from nexus_o.eval.runner import load_items

    if not NAME_PATTERN.match(prefix):
        raise EvalError(f"task prefix {prefix!r} must be lower-case letters, digits and _")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for task_name, manifest in manifests.items():
        if task_name not in TEXT_TASKS:
            raise EvalError(f"no lmms-eval task for {task_name!r}: lmms-eval scores text replies; expected one "
                            f"of {', '.join(TEXT_TASKS)} (tts runs in `nexus-o eval`)")
        items = load_items(get_task(task_name), Path(manifest), limit)
        by_lang: dict[str, list[EvalItem]] = {}
        for item in items:
            by_lang.setdefault(item.lang, []).append(item)
        for lang, group in sorted(by_lang.items()):
            name = f"{prefix}_{task_name}_{lang}"
            docs = [{"id": i.id, "line": i.line, "task": task_name, "lang": lang, "reference": i.reference,
                     "prompt": json.dumps(i.prompt, ensure_ascii=False)} for i in group]
            (out_dir / f"{name}.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs),
                                                   encoding="utf-8")
            text = task_yaml(name, f"{name}.jsonl", metric_name(task_name, lang), max_new_tokens, str(manifest))
            (out_dir / f"{name}.yaml").write_text(text, encoding="utf-8")
            names.append(name)
    return names


# -- the functions the task YAMLs name -----------------------------------------------------------
def _prompt(doc: dict) -> dict:
    return json.loads(doc["prompt"])


def doc_to_messages(doc: dict) -> list[dict]:
    """The prompt conversation as lmms-eval chat messages: [{"role", "content": [parts]}].

    Read by the shared `Conversation` (tags take the next item of their media list), so the
    rendered prompt is the one `nexus-o eval` renders.
    """
    prompt = _prompt(doc)
    try:
        conversation = Conversation.from_messages(prompt["messages"], prompt.get("images"), prompt.get("videos"),
                                                  prompt.get("audios"))
    except (ValueError, KeyError) as err:
        raise EvalError(f"item {doc['id']}: {err}") from None
    return [{"role": m.role, "content": [{"type": "text", "text": p.text} if isinstance(p, Text)
                                         else {"type": p.kind, "url": p.source} for p in m.parts]}
            for m in conversation.messages]


def doc_to_visual(doc: dict) -> list[str]:
    """Every media path of the prompt, in the order its tags (or parts) appear."""
    return [part["url"] for message in doc_to_messages(doc) for part in message["content"] if part["type"] != "text"]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The last user turn's text, media tags removed."""
    user = [m for m in doc_to_messages(doc) if m["role"] == "user"][-1]
    return "".join(part["text"] for part in user["content"] if part["type"] == "text").strip()


def process_results(doc: dict, results: list) -> dict:
    """lmms-eval's per-doc hook: {metric: the pair `aggregate` scores}."""
    prediction = results[0] if results else ""
    return {metric_name(doc["task"], doc["lang"]): {"task": doc["task"], "lang": doc["lang"],
                                                     "reference": doc["reference"], "prediction": prediction}}


def aggregate(records: list[dict]) -> float:
    """The task's score over all docs (corpus WER/CER, corpus BLEU or accuracy), as `nexus-o eval` reports it."""
    kinds = {(r["task"], r["lang"]) for r in records}
    if len(kinds) != 1:
        raise EvalError(f"one lmms-eval task must hold one benchmark and language, got {sorted(kinds)}")
    (task, lang), = kinds
    refs, hyps = [r["reference"] for r in records], [r["prediction"] for r in records]
    return float(get_task(task).score_group(refs, hyps, lang)["score"])
