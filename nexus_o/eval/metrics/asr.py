"""Word and character error rates (ASR, and TTS intelligibility through an ASR round trip).

Three protocols:
- "default" (ASR benchmarks, paper §4): English WER after Whisper's English normaliser, Mandarin
  CER after `normalize_zh`; corpus level: total edits / total reference units.
- "seed-tts" (TTS benchmarks): `seed_tts_normalize`, then the mean over utterances of each
  utterance's (S + D + I) / N, words for English and characters for Chinese.
- "seed-tts-whisper": the Seed-TTS mean over utterances, after the "default" normalisers
  (Whisper's English normaliser maps "two", "2" and "2." alike), so that a judge writing numerals
  is not counted wrong for the spelling alone.

Edit counts come from jiwer's alignment. Conventions for degenerate lines:
- an empty hypothesis scores as all deletions;
- a reference that is empty after normalisation (e.g. only punctuation) has no defined rate: it is
  left out of every total and of the mean, its hypothesis is ignored, and it is counted in
  `skipped_empty_refs`; if every reference is empty, EmptyReferencesError is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import jiwer

from nexus_o.eval.metrics.inputs import (
    EmptyReferencesError,
    MetricInputError,
    check_paired,
    check_texts,
)
from nexus_o.eval.metrics.normalizers import check_lang, normalize_en, normalize_zh, seed_tts_normalize

PROTOCOLS = ("default", "seed-tts", "seed-tts-whisper")
PER_UTTERANCE = ("seed-tts", "seed-tts-whisper")  # protocols that average per-utterance rates
METRIC_FOR_LANG = {"en": "wer", "zh": "cer"}
LANG_FOR_METRIC = {"wer": "en", "cer": "zh"}


@dataclass(frozen=True)
class EditCounts:
    """Levenshtein alignment counts of one hypothesis against one reference."""

    substitutions: int
    deletions: int
    insertions: int
    hits: int

    @property
    def ref_len(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


@dataclass(frozen=True)
class ErrorRateResult:
    """A WER or CER with the counts behind it.

    `score` is a fraction (0.1 = 10 %) and can exceed 1 when there are many insertions.
    `utterances` counts every pair given, `skipped_empty_refs` those left out (see module doc);
    the totals cover the scored pairs. `per_utterance` holds each pair's own rate, None where skipped.
    """

    metric: str
    protocol: str
    lang: str
    score: float
    errors: int
    ref_units: int
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    utterances: int
    skipped_empty_refs: int
    per_utterance: tuple[float | None, ...] = field(repr=False)

    def summary(self) -> str:
        """One human-readable line, e.g. "wer 10.00% [default, en]: 3 errors / 30 ref words ..."."""
        unit = "words" if self.metric == "wer" else "chars"
        reduction = "mean over utterances" if self.protocol in PER_UTTERANCE else "corpus"
        line = (
            f"{self.metric} {100 * self.score:.2f}% [{self.protocol}, {self.lang}, {reduction}]: "
            f"{self.errors} errors / {self.ref_units} ref {unit} "
            f"(S={self.substitutions} D={self.deletions} I={self.insertions}), "
            f"{self.utterances} utterances"
        )
        if self.skipped_empty_refs:
            line += f", {self.skipped_empty_refs} skipped (reference empty after normalisation)"
        return line

    def to_dict(self) -> dict:
        """JSON-ready summary: score and counts (`ref_words` or `ref_chars`), no per-utterance list."""
        unit_key = "ref_words" if self.metric == "wer" else "ref_chars"
        return {
            (unit_key if key == "ref_units" else key): value
            for key, value in asdict(self).items()
            if key != "per_utterance"
        }


def check_protocol(protocol: str) -> str:
    """Return `protocol` if known, else raise ValueError listing the known ones."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    return protocol


def _normalizer(lang: str, protocol: str) -> Callable[[str], str]:
    if protocol == "seed-tts":
        return lambda text: seed_tts_normalize(text, lang)
    return normalize_en if lang == "en" else normalize_zh


def _units(normalized: str, lang: str) -> str:
    """Space-separated scoring units: words for English, characters (whitespace dropped) for Chinese."""
    if lang == "zh":
        return " ".join(c for c in normalized if not c.isspace())
    return " ".join(normalized.split())


def align_counts(refs: Sequence[str], hyps: Sequence[str]) -> list[EditCounts]:
    """Per-pair edit counts of space-separated unit strings (already normalised), via jiwer."""
    out = jiwer.process_words(list(refs), list(hyps))
    counts = []
    for chunks in out.alignments:
        s = d = i = h = 0
        for chunk in chunks:
            n_ref = chunk.ref_end_idx - chunk.ref_start_idx
            if chunk.type == "equal":
                h += n_ref
            elif chunk.type == "substitute":
                s += n_ref
            elif chunk.type == "delete":
                d += n_ref
            else:  # "insert"
                i += chunk.hyp_end_idx - chunk.hyp_start_idx
        counts.append(EditCounts(s, d, i, h))
    return counts


def error_rate(
    refs: Sequence[str],
    hyps: Sequence[str],
    lang: str,
    protocol: str = "default",
    ref_name: str = "references",
    hyp_name: str = "hypotheses",
) -> ErrorRateResult:
    """WER for English, CER for Mandarin, under `protocol`.

    Args:
        refs, hyps: raw (unnormalised) texts, one per utterance, same length.
        lang: "en" (WER) or "zh" (CER).
        protocol: "default" (corpus rate), "seed-tts" or "seed-tts-whisper" (mean of per-utterance
            rates; see the module doc).
        ref_name, hyp_name: names used in error messages, e.g. the source files.

    Raises:
        LineCountMismatchError: unequal lengths. EmptyReferencesError: all references empty.
    """
    check_lang(lang)
    check_protocol(protocol)
    check_paired(refs, hyps, ref_name, hyp_name)
    check_texts(refs, ref_name)
    check_texts(hyps, hyp_name)
    normalize = _normalizer(lang, protocol)
    ref_units = [_units(normalize(r), lang) for r in refs]
    kept = [k for k, units in enumerate(ref_units) if units]
    if not kept:
        raise EmptyReferencesError(
            f"all {len(refs)} lines of {ref_name} are empty after normalisation: "
            "no error rate is defined"
        )
    hyp_units = [_units(normalize(hyps[k]), lang) for k in kept]
    counts = align_counts([ref_units[k] for k in kept], hyp_units)

    per_utterance: list[float | None] = [None] * len(refs)
    for k, c in zip(kept, counts):
        per_utterance[k] = c.errors / c.ref_len
    total = EditCounts(
        substitutions=sum(c.substitutions for c in counts),
        deletions=sum(c.deletions for c in counts),
        insertions=sum(c.insertions for c in counts),
        hits=sum(c.hits for c in counts),
    )
    if protocol in PER_UTTERANCE:
        score = sum(c.errors / c.ref_len for c in counts) / len(counts)
    else:
        score = total.errors / total.ref_len
    return ErrorRateResult(
        metric=METRIC_FOR_LANG[lang],
        protocol=protocol,
        lang=lang,
        score=score,
        errors=total.errors,
        ref_units=total.ref_len,
        substitutions=total.substitutions,
        deletions=total.deletions,
        insertions=total.insertions,
        hits=total.hits,
        utterances=len(refs),
        skipped_empty_refs=len(refs) - len(kept),
        per_utterance=tuple(per_utterance),
    )


def wer(refs: Sequence[str], hyps: Sequence[str], protocol: str = "default") -> ErrorRateResult:
    """English word error rate; see `error_rate`."""
    return error_rate(refs, hyps, "en", protocol)


def cer(refs: Sequence[str], hyps: Sequence[str], protocol: str = "default") -> ErrorRateResult:
    """Mandarin character error rate (traditional and simplified compare equal); see `error_rate`."""
    return error_rate(refs, hyps, "zh", protocol)


def utterance_error_rate(ref: str, hyp: str, lang: str, protocol: str = "seed-tts") -> float:
    """Error rate of one transcript against one text, e.g. to accept or reject a synthesised sample.

    Returns:
        (S + D + I) / N as a fraction (WER for "en", CER for "zh").

    Raises:
        EmptyReferencesError: `ref` is empty after normalisation.
    """
    if not isinstance(ref, str) or not isinstance(hyp, str):
        raise MetricInputError("utterance_error_rate takes one reference and one hypothesis string")
    result = error_rate([ref], [hyp], lang, protocol, ref_name="reference", hyp_name="hypothesis")
    return result.score
