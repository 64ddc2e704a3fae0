"""The benchmark tasks of `nexus-o eval`: how a manifest line becomes a prompt, a reference and a score.

A benchmark is a manifest in the training format (`nexus_o.data.schema.Sample`), one item a line::

    {"messages": [{"role": "user", "content": "<audio>Transcribe this recording."},
                  {"role": "assistant", "content": "the cat sat on the mat"}],
     "audios": ["clips/0001.wav"], "task": "asr:en", "id": "1089-134686-0000"}

- The last message is the assistant's and its content is the reference; every message before it,
  with the line's media, is the prompt. Per task:

  ======  ==========================================  ===========================================
  task    reference (last assistant message)          score
  ======  ==========================================  ===========================================
  asr     the transcript                              WER (en) / CER (zh), corpus level
  s2tt    the translation                             sacrebleu corpus BLEU (13a into en, zh into zh)
  sqa     acceptable answers: "a | b" or ["a", "b"]   accuracy: an answer appears in the reply
  vqa     acceptable answers, same two forms          accuracy: the normalised reply equals an answer
  tts     the text to be spoken                       Seed-TTS WER/CER of the transcribed speech
  ======  ==========================================  ===========================================

- Language is the reference's: the target language for s2tt, the spoken text's for tts. A line
  may state it in its ``task`` field, ``"asr:zh"``, or ``"s2tt:en-zh"`` (source-target; the target
  counts). Without it the language is detected from the reference
  (`nexus_o.speech.language.detect_language`). A ``task`` field must name the file's task.
- asr, s2tt and sqa need an ``<audio>``; vqa an ``<image>`` or ``<video>``; tts needs no media.
- vqa is exact match after `normalize_answer` (Whisper's English normaliser: case, punctuation,
  "four" == "4"), meant for single-word answers ("red", "3", "yes"); "It is red." does not match
  "red". Benchmarks with free-form answers belong to the VLMEvalKit / lmms-eval adapters.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from nexus_o.data.schema import Sample
from nexus_o.eval.metrics import (
    bleu,
    error_rate,
    normalize_answer,
    parse_answer_line,
    sqa_accuracy,
)
from nexus_o.speech.language import LANGUAGES, detect_language
from nexus_o.processing.conversation import MODALITIES, count_tags


class EvalError(ValueError):
    """Bad evaluation input: unknown task, malformed benchmark line, stale cache. Names the place."""


@dataclass(frozen=True)
class EvalItem:
    """One benchmark item: its manifest line, the prompt conversation, the reference and its language.

    prompt is manifest-shaped: {"messages": [...], "images": [...], "videos": [...], "audios": [...]},
    media paths absolute. key fingerprints the item, so a cached prediction is matched to its item.
    """

    line: int
    id: str
    prompt: dict
    reference: str
    lang: str
    key: str


class Task:
    """One benchmark task. Subclasses set the class attributes and `score_group`."""

    name: ClassVar[str]
    title: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()  # the line must carry one of these modalities
    speech_output: ClassVar[bool] = False  # the model must speak (tts)

    def item(self, line: int, sample: Sample, where: str) -> EvalItem:
        """Turn a validated manifest line into an `EvalItem`; `where` ("file:line") names it in errors."""
        messages = sample.messages
        if messages[-1].role != "assistant":
            raise EvalError(f"{where}: the last message must be the assistant's reference, got {messages[-1].role!r}")
        if len(messages) < 2:
            raise EvalError(f"{where}: no prompt before the reference message")
        reference = str(messages[-1].content)
        if any(count_tags(reference).values()):
            raise EvalError(f"{where}: the reference (last assistant message) holds a media tag: {reference[:60]!r}")
        if not reference.strip():
            raise EvalError(f"{where}: the reference (last assistant message) is empty")
        if self.needs and not any(getattr(sample, m + "s") for m in self.needs):
            wanted = " or ".join(f"<{m}>" for m in self.needs)
            raise EvalError(f"{where}: a {self.name} item needs {wanted} in its prompt")
        prompt = {"messages": [m.model_dump() for m in messages[:-1]]}
        for modality in MODALITIES:
            prompt[modality + "s"] = list(getattr(sample, modality + "s"))
        return EvalItem(line=line, id=str(sample.id) if sample.id is not None else f"line-{line}", prompt=prompt,
                        reference=reference, lang=self._lang(sample, reference, where),
                        key=_fingerprint(prompt, reference))

    def _lang(self, sample: Sample, reference: str, where: str) -> str:
        if sample.task is None:
            return detect_language(reference)
        kind, _, lang = sample.task.partition(":")
        if kind != self.name:
            raise EvalError(f"{where}: line task {sample.task!r} is not {self.name!r}, the task of this file")
        if not lang:
            return detect_language(reference)
        lang = lang.rpartition("-")[2]  # "en-zh": the target language
        if lang not in LANGUAGES:
            raise EvalError(f"{where}: task {sample.task!r} names language {lang!r}; expected one of {LANGUAGES}")
        return lang

    def score(self, items: Sequence[EvalItem], predictions: Sequence[str]) -> list[dict]:
        """Score predictions (one text per item) per language; one dict per language, sorted by language."""
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for item, prediction in zip(items, predictions, strict=True):
            refs, hyps = groups.setdefault(item.lang, ([], []))
            refs.append(item.reference)
            hyps.append(prediction)
        return [{"lang": lang, "items": len(refs), **self.score_group(refs, hyps, lang)}
                for lang, (refs, hyps) in sorted(groups.items())]

    def score_group(self, refs: list[str], hyps: list[str], lang: str) -> dict:
        """{"metric", "score", "unit", "details"} for one language; implemented by each task."""
        raise NotImplementedError(f"{type(self).__name__} does not define score_group")


class AsrTask(Task):
    name, title, needs = "asr", "ASR", ("audio",)

    def score_group(self, refs, hyps, lang):
        result = error_rate(refs, hyps, lang, ref_name="references", hyp_name="transcripts")
        return {"metric": result.metric, "score": 100 * result.score, "unit": "%", "details": result.to_dict()}


class S2ttTask(Task):
    name, title, needs = "s2tt", "S2TT", ("audio",)

    def score_group(self, refs, hyps, lang):
        result = bleu(refs, hyps, lang, ref_name="references", hyp_name="translations")
        return {"metric": "bleu", "score": result.score, "unit": "BLEU", "details": result.to_dict()}


class SqaTask(Task):
    name, title, needs = "sqa", "Spoken QA", ("audio",)

    def score_group(self, refs, hyps, lang):
        result = sqa_accuracy(refs, hyps, lang, ref_name="answers", hyp_name="replies")
        return {"metric": "accuracy", "score": 100 * result.score, "unit": "%", "details": result.to_dict()}


class VqaTask(Task):
    name, title, needs = "vqa", "VQA", ("image", "video")

    def score_group(self, refs, hyps, lang):
        correct = scored = 0
        for k, (ref, hyp) in enumerate(zip(refs, hyps)):
            answers = {a for a in (normalize_answer(x, lang) for x in parse_answer_line(ref, f"answers:{k + 1}")) if a}
            if answers:
                scored += 1
                correct += normalize_answer(hyp, lang) in answers
        if not scored:
            raise EvalError(f"all {len(refs)} vqa answers [{lang}] are empty after normalisation")
        details = {"correct": correct, "scored": scored, "skipped_empty_refs": len(refs) - scored}
        return {"metric": "accuracy", "score": 100 * correct / scored, "unit": "%", "details": details}


class TtsTask(Task):
    """The prompt asks the model to speak; the reference is the text. Predictions are ASR transcripts."""

    name, title, speech_output = "tts", "TTS", True

    def score_group(self, refs, hyps, lang):
        result = error_rate(refs, hyps, lang, protocol="seed-tts", ref_name="texts", hyp_name="transcripts")
        # The same transcripts under the "default" normalisers (Whisper's for English: "two" = "2").
        whisper = error_rate(refs, hyps, lang, protocol="seed-tts-whisper", ref_name="texts", hyp_name="transcripts")
        details = {**result.to_dict(), "score_whisper_normalised": 100 * whisper.score}
        return {"metric": result.metric, "score": 100 * result.score, "unit": "%", "details": details}


TASKS: dict[str, Task] = {t.name: t for t in (AsrTask(), S2ttTask(), SqaTask(), TtsTask(), VqaTask())}


def get_task(name: str) -> Task:
    """The task called `name`; EvalError lists the known names otherwise."""
    if name not in TASKS:
        raise EvalError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


def _fingerprint(prompt: dict, reference: str) -> str:
    """Hash of what the model sees and what it is scored against. Media count by file name, so a
    benchmark folder that moves keeps its cached predictions."""
    media = {k: [os.path.basename(str(p)) if not str(p).startswith("data:") else hashlib.sha1(str(p).encode()).hexdigest()
                 for p in prompt[k]] for k in ("images", "videos", "audios")}
    blob = json.dumps([prompt["messages"], media, reference], ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]
