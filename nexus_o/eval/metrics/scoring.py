"""One entry point for every text metric: pick the metric by name, score texts or files.

This is what `nexus-o score` calls; Python users can call the metric functions directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nexus_o.eval.metrics.asr import LANG_FOR_METRIC, ErrorRateResult, check_protocol, error_rate
from nexus_o.eval.metrics.bleu import BleuResult, bleu
from nexus_o.eval.metrics.inputs import MetricInputError, read_paired
from nexus_o.eval.metrics.normalizers import check_lang
from nexus_o.eval.metrics.sqa import SqaResult, sqa_accuracy

METRICS = ("wer", "cer", "bleu", "sqa")

MetricResult = ErrorRateResult | BleuResult | SqaResult


def resolve_lang(metric: str, lang: str | None) -> str:
    """The language a metric scores in: wer is English and cer Mandarin; bleu and sqa default to "en".

    Raises:
        MetricInputError: unknown metric, or a language that contradicts wer/cer.
    """
    if metric not in METRICS:
        raise MetricInputError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if metric in LANG_FOR_METRIC:
        expected = LANG_FOR_METRIC[metric]
        if lang is not None and lang != expected:
            other = "cer" if metric == "wer" else "wer"
            raise MetricInputError(
                f"{metric} scores lang {expected!r}; for lang {lang!r} use {other} instead"
            )
        return expected
    return check_lang("en" if lang is None else lang)


def score_texts(
    metric: str,
    refs: Sequence[str],
    hyps: Sequence[str],
    lang: str | None = None,
    protocol: str = "default",
    ref_name: str = "references",
    hyp_name: str = "hypotheses",
) -> MetricResult:
    """Score `hyps` against `refs` with `metric` ("wer", "cer", "bleu" or "sqa").

    Args:
        lang: see `resolve_lang`.
        protocol: "default", or "seed-tts" / "seed-tts-whisper" (wer/cer only: mean per-utterance rate).
        ref_name, hyp_name: names used in error messages.

    Returns:
        The metric's result object (`.score`, `.summary()`, `.to_dict()`).
    """
    lang = resolve_lang(metric, lang)
    check_protocol(protocol)
    if metric in ("wer", "cer"):
        return error_rate(refs, hyps, lang, protocol, ref_name=ref_name, hyp_name=hyp_name)
    if protocol != "default":
        raise MetricInputError(f"protocol {protocol!r} applies to wer and cer only, not {metric}")
    if metric == "bleu":
        return bleu(refs, hyps, lang, ref_name=ref_name, hyp_name=hyp_name)
    return sqa_accuracy(refs, hyps, lang, ref_name=ref_name, hyp_name=hyp_name)


def score_files(
    metric: str,
    refs_path: str | Path,
    hyps_path: str | Path,
    lang: str | None = None,
    protocol: str = "default",
) -> MetricResult:
    """Score two text files, one item a line (for sqa, the refs format of `sqa.parse_answer_line`).

    Raises:
        FileNotFoundError: a file is missing. LineCountMismatchError: the message names both files
        and both line counts. MetricInputError: any other input the metric cannot score.
    """
    resolve_lang(metric, lang)  # fail on a bad metric/lang before reading large files
    refs, hyps = read_paired(refs_path, hyps_path)
    return score_texts(
        metric, refs, hyps, lang, protocol, ref_name=str(refs_path), hyp_name=str(hyps_path)
    )
