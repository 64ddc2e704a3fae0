"""Language detection for the synthesis pipeline: English (`en`) or Mandarin Chinese (`zh`).

The pipeline only needs to know which speaker pool and which verification metric (WER or CER)
a text belongs to, so detection is a character count, not a statistical model:

- a text is `zh` when it has at least one CJK ideograph and its ideographs are at least as many
  as its Latin words ("我喜欢Python编程" -> zh, "I love 北京 and 上海" -> en);
- everything else is `en`.

Ties go to `zh` on purpose: an English espeak voice cannot pronounce ideographs at all, while the
Mandarin voice reads embedded Latin words as English, so a wrong `zh` costs less than a wrong `en`.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")

# CJK Unified Ideographs, Extension A, Compatibility Ideographs, Extensions B-F and the
# Compatibility Supplement: every code point that is a Chinese character (hanzi).
CJK_IDEOGRAPH_CLASS = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef\U0002f800-\U0002fa1f"
)
CJK_IDEOGRAPH_RE = re.compile(f"[{CJK_IDEOGRAPH_CLASS}]")
_NON_CJK_RUN_RE = re.compile(f"[^{CJK_IDEOGRAPH_CLASS}]+")
LATIN_WORD_RE = re.compile(r"[A-Za-z]+")


def count_cjk(text: str) -> int:
    """Number of CJK ideographs (Chinese characters) in `text`."""
    if text.isascii():  # O(1) in CPython: most English text stops here
        return 0
    # Subtracting the few non-CJK runs is faster than collecting every ideograph.
    return len(text) - sum(map(len, _NON_CJK_RUN_RE.findall(text)))


def count_latin_words(text: str) -> int:
    """Number of maximal runs of ASCII letters in `text` ("don't" counts as two)."""
    return len(LATIN_WORD_RE.findall(text))


def detect_language(text: str) -> Language:
    """Return "zh" when CJK ideographs dominate `text` (see module docstring), else "en"."""
    n_cjk = count_cjk(text)
    if n_cjk == 0:
        return "en"
    return "zh" if n_cjk >= count_latin_words(text) else "en"


def check_language(language: str) -> Language:
    """Validate a language code given by a user or a config; raise ValueError naming the choices."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    return language  # type: ignore[return-value]
