"""Speech-translation BLEU: sacrebleu corpus BLEU as CoVoST2 results are reported.

Texts are scored as given (detokenised, case-sensitive: sacrebleu's defaults); the tokenizer
follows the target language: `13a` into English, `zh` into Chinese. One reference per segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from nexus_o.eval.metrics.inputs import EmptyReferencesError, check_paired, check_texts
from nexus_o.eval.metrics.normalizers import check_lang

TOKENIZER_FOR_LANG = {"en": "13a", "zh": "zh"}


@dataclass(frozen=True)
class BleuResult:
    """Corpus BLEU on sacrebleu's 0-100 scale, with the statistics behind it.

    `precisions` are the 1- to 4-gram precisions in percent, `hyp_len` / `ref_len` count tokens
    after the tokenizer, `signature` is sacrebleu's reproducibility string.
    """

    metric: str
    lang: str
    score: float
    tokenizer: str
    precisions: tuple[float, ...]
    brevity_penalty: float
    hyp_len: int
    ref_len: int
    utterances: int
    empty_refs: int
    signature: str

    def summary(self) -> str:
        """One human-readable line with the score, n-gram precisions, lengths and signature."""
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (
            f"bleu {self.score:.2f} [{self.lang}, tok {self.tokenizer}]: {precisions} "
            f"BP={self.brevity_penalty:.3f} hyp_len={self.hyp_len} ref_len={self.ref_len}, "
            f"{self.utterances} segments ({self.signature})"
        )

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        out = asdict(self)
        out["precisions"] = list(self.precisions)
        return out


def bleu(
    refs: Sequence[str],
    hyps: Sequence[str],
    lang: str = "en",
    ref_name: str = "references",
    hyp_name: str = "hypotheses",
) -> BleuResult:
    """Corpus BLEU of translations `hyps` against `refs` in target language `lang`.

    Args:
        refs, hyps: one segment per item, same length; empty hypotheses are allowed (they only
            lower the brevity penalty), empty references stay in the corpus as sacrebleu counts them.
        lang: target language, "en" (tokenizer 13a) or "zh" (tokenizer zh).
        ref_name, hyp_name: names used in error messages.

    Raises:
        LineCountMismatchError: unequal lengths. EmptyReferencesError: every reference is empty.
    """
    from sacrebleu.metrics import BLEU

    check_lang(lang)
    check_paired(refs, hyps, ref_name, hyp_name)
    check_texts(refs, ref_name)
    check_texts(hyps, hyp_name)
    empty_refs = sum(1 for r in refs if not r.strip())
    if empty_refs == len(refs):
        raise EmptyReferencesError(f"all {len(refs)} lines of {ref_name} are empty: no BLEU is defined")
    metric = BLEU(tokenize=TOKENIZER_FOR_LANG[lang])
    out = metric.corpus_score(list(hyps), [list(refs)])
    return BleuResult(
        metric="bleu",
        lang=lang,
        score=float(out.score),
        tokenizer=TOKENIZER_FOR_LANG[lang],
        precisions=tuple(float(p) for p in out.precisions),
        brevity_penalty=float(out.bp),
        hyp_len=int(out.sys_len),
        ref_len=int(out.ref_len),
        utterances=len(refs),
        empty_refs=empty_refs,
        signature=str(metric.get_signature()),
    )
