"""Spoken-QA accuracy (LLaMA Questions and similar): an item is correct when one of its reference
answers appears in the model's normalised output.

Reference format, one item a line, two spellings accepted:
- plain text, alternatives separated by " | " (space, bar, space): `Paris | the city of Paris`;
- a JSON list of strings: `["Paris", "the city of Paris"]` (any line starting with "[").

Matching after `normalize_answer` on both sides (Whisper's English normaliser, so "Four" matches
"4"; the Mandarin normaliser for "zh"). English matches whole words: the answer's words must occur
as a contiguous run of the output's words, so "4" does not match "14" and "cat" does not match
"concatenate". Chinese has no word boundaries, so it is a plain substring test.
Answers that normalise to nothing are dropped; an item with no answer left is skipped and counted
in `skipped_empty_refs` (all items empty raises EmptyReferencesError).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from nexus_o.eval.metrics.inputs import (
    EmptyReferencesError,
    MetricInputError,
    check_paired,
    check_texts,
)
from nexus_o.eval.metrics.normalizers import check_lang, normalize_answer

ANSWER_SEPARATOR = " | "


@dataclass(frozen=True)
class SqaResult:
    """Accuracy as a fraction of the scored items; `per_item` is True/False, or None where skipped."""

    metric: str
    lang: str
    score: float
    correct: int
    scored: int
    utterances: int
    skipped_empty_refs: int
    per_item: tuple[bool | None, ...] = field(repr=False)

    def summary(self) -> str:
        """One human-readable line, e.g. "sqa 66.67% [en]: 2 / 3 correct, 3 items"."""
        line = (
            f"sqa {100 * self.score:.2f}% [{self.lang}]: {self.correct} / {self.scored} correct, "
            f"{self.utterances} items"
        )
        if self.skipped_empty_refs:
            line += f", {self.skipped_empty_refs} skipped (no answer after normalisation)"
        return line

    def to_dict(self) -> dict:
        """JSON-ready summary without the per-item list."""
        return {k: v for k, v in asdict(self).items() if k != "per_item"}


def parse_answer_line(line: str, where: str = "reference line") -> list[str]:
    """Parse one reference line into its acceptable answers (see module doc for the two formats).

    Args:
        line: the raw line.
        where: how an error names the line, e.g. "refs.txt:12".

    Raises:
        MetricInputError: a "[" line that is not a JSON list of strings.
    """
    stripped = line.strip()
    if stripped.startswith("["):
        try:
            answers = json.loads(stripped)
        except json.JSONDecodeError as err:
            message = f"{where}: starts with '[' but is not a JSON list ({err.msg})"
            raise MetricInputError(message) from err
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise MetricInputError(f"{where}: a JSON answer line must be a list of strings")
        return answers
    return stripped.split(ANSWER_SEPARATOR)


def _contains(answer: str, output: str, lang: str) -> bool:
    """Containment of already-normalised texts: substring for "zh", whole-word run for "en"."""
    if lang == "zh":
        return answer in output
    return f" {answer} " in f" {output} "


def answer_matches(answer: str, output: str, lang: str) -> bool:
    """True when the normalised `answer` occurs in the normalised `output` (whole words for "en")."""
    check_lang(lang)
    ans = normalize_answer(answer, lang)
    return bool(ans) and _contains(ans, normalize_answer(output, lang), lang)


def sqa_accuracy(
    refs: Sequence[str | Sequence[str]],
    hyps: Sequence[str],
    lang: str = "en",
    ref_name: str = "references",
    hyp_name: str = "hypotheses",
) -> SqaResult:
    """Accuracy of model outputs `hyps` against reference answers `refs`.

    Args:
        refs: per item, either a raw reference line (parsed by `parse_answer_line`) or a list of
            acceptable answers.
        hyps: the model's output text per item (e.g. the transcript of its spoken answer).
        lang: "en" or "zh", picks the normaliser.
        ref_name, hyp_name: names used in error messages.

    Raises:
        LineCountMismatchError: unequal lengths. EmptyReferencesError: no item has an answer.
    """
    check_lang(lang)
    check_paired(refs, hyps, ref_name, hyp_name)
    check_texts(hyps, hyp_name)
    per_item: list[bool | None] = []
    for k, (ref, hyp) in enumerate(zip(refs, hyps)):
        if isinstance(ref, str):
            answers = parse_answer_line(ref, f"{ref_name}:{k + 1}")
        else:
            answers = list(ref)
            check_texts(answers, f"{ref_name}[{k}]")
        normalized = [a for a in (normalize_answer(a, lang) for a in answers) if a]
        if not normalized:
            per_item.append(None)
            continue
        out = normalize_answer(hyp, lang)
        per_item.append(any(_contains(a, out, lang) for a in normalized))
    scored = [ok for ok in per_item if ok is not None]
    if not scored:
        raise EmptyReferencesError(
            f"all {len(refs)} items of {ref_name} have no answer after normalisation"
        )
    correct = sum(scored)
    return SqaResult(
        metric="sqa",
        lang=lang,
        score=correct / len(scored),
        correct=correct,
        scored=len(scored),
        utterances=len(refs),
        skipped_empty_refs=len(refs) - len(scored),
        per_item=tuple(per_item),
    )
