"""Text normalisers used before scoring, the way the field applies them.

- `normalize_en`: Whisper's English normaliser (OpenAI Whisper paper, appendix C), as packaged by
  `whisper-normalizer`. Spelled numbers become digits ("twenty one" -> "21"), contractions are
  expanded ("don't" -> "do not", "can't" -> "can not"), British spellings become American,
  fillers (uh, um, hmm) and bracketed text are dropped, punctuation is removed, text is lower-cased.
  Its quirks are kept for parity with published WERs, e.g. "5 dollars..." -> "$5 ." (a "." token).
- `normalize_zh`: Mandarin CER text: traditional -> simplified (OpenCC `t2s`), lower-cased (Latin
  letters in code-switched text), punctuation and all whitespace removed; the result is scored per
  character.
- `seed_tts_normalize`: the Seed-TTS eval protocol (BytedanceSpeech/seed-tts-eval `run_wer.py`):
  every punctuation mark except the ASCII apostrophe is removed; English is lower-cased and scored
  per word; Chinese is scored per character, spaces ignored. The protocol converts the Mandarin
  ASR transcript to simplified characters; we convert both sides, which changes nothing for
  simplified references.

The normaliser objects are built lazily on first use and reused (building Whisper's takes ~50 ms).
"""

from __future__ import annotations

import string
import unicodedata
from functools import cache, lru_cache

LANGS = ("en", "zh")

_ASCII_PUNCT = frozenset(string.punctuation)


@cache
def _english_normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


@cache
def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


@lru_cache(maxsize=65536)
def is_punctuation(char: str) -> bool:
    """True for a punctuation mark in ASCII, CJK or any other script.

    Covers Unicode categories P* (，。、《》“” ...), ASCII `string.punctuation` (which includes
    symbols such as $ + < = > ^ ` | ~) and the full-width forms of those symbols (＄ ～ ＋),
    i.e. the union that seed-tts-eval strips (zhon's hanzi punctuation + string.punctuation).
    """
    if char in _ASCII_PUNCT or unicodedata.category(char).startswith("P"):
        return True
    folded = unicodedata.normalize("NFKC", char)
    return len(folded) == 1 and folded in _ASCII_PUNCT


def strip_punctuation(text: str, keep: str = "") -> str:
    """Remove every punctuation mark (see `is_punctuation`) except the characters in `keep`."""
    return "".join(c for c in text if c in keep or not is_punctuation(c))


def check_lang(lang: str) -> str:
    """Return `lang` if it is a supported language code ("en" or "zh"), else raise ValueError."""
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; expected one of {', '.join(LANGS)}")
    return lang


def normalize_en(text: str) -> str:
    """Whisper's English normalisation: "Twenty-one dollars, Mr. Smith!" -> "$21 mister smith".

    Returns:
        Lower-cased words separated by single spaces (empty if nothing is left).
    """
    return _english_normalizer()(text).strip()


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese characters (OpenCC `t2s`); other text is unchanged."""
    return _t2s().convert(text)


def normalize_zh(text: str) -> str:
    """Mandarin CER normalisation: "這是，一個 Test。" -> "这是一个test".

    Returns:
        Simplified, lower-cased characters with punctuation and whitespace removed; one
        character is one scoring unit.
    """
    simplified = to_simplified(text).lower()
    return "".join(c for c in simplified if not c.isspace() and not is_punctuation(c))


def seed_tts_normalize(text: str, lang: str) -> str:
    """Seed-TTS eval normalisation.

    Args:
        text: a TTS input text or an ASR transcript.
        lang: "en" (lower-cased words) or "zh" (characters, simplified).

    Returns:
        "en": words separated by single spaces; "zh": characters with whitespace removed.
        The ASCII apostrophe survives in both ("don't" stays "don't").
    """
    check_lang(lang)
    if lang == "zh":
        kept = strip_punctuation(to_simplified(text), keep="'")
        return "".join(c for c in kept if not c.isspace())
    return " ".join(strip_punctuation(text, keep="'").lower().split())


def normalize_answer(text: str, lang: str) -> str:
    """Normalisation for spoken-QA matching: `normalize_en` for "en", `normalize_zh` for "zh"."""
    check_lang(lang)
    return normalize_en(text) if lang == "en" else normalize_zh(text)
