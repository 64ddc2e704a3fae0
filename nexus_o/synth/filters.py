"""Text filters of the text -> speech branch (paper §3.2, "pre-processing rules"; SPEC §3).

A text is checked against these rules, in this order, and rejected by the first that fires:

1. `length`: over 200 English words, or over 200 Chinese characters for Chinese text.
   English words are whitespace-separated tokens. Chinese text (see `language.detect_language`)
   counts CJK ideographs plus embedded Latin words, one unit each, since each is spoken as
   roughly one syllable group.
2. `non_text_ratio`: non-text characters / non-whitespace characters > 0.2. Text characters are
   ASCII letters, CJK ideographs and punctuation: ASCII punctuation (`string.punctuation`),
   CJK and fullwidth punctuation, the General Punctuation dashes/quotes/ellipsis (U+2010-U+2027)
   and the middle dot. Everything else is non-text: digits, accented letters, fullwidth letters
   and digits, symbols, emoji.
3. `url`: a scheme URL (`https://`, `ftp://`, ...), a `www.` host, or a bare domain whose last
   label is a common TLD written in lower case (`example.com`, `news.bbc.co.uk`). Decision: TLDs
   that are also English words (`it`, `me`, `to`, `is`, `in`, `at`, `be`, `by`, `do`, `go`, `no`,
   `so`, `us`, `my`, ...) are not in the list, and an upper-case last label never counts, so a
   missing space after a full stop ("Hi.there", "home.It was") is not a URL. E-mail addresses
   contain a domain and are rejected here too.
4. `path`: POSIX absolute paths with at least two components (`/usr/bin/x`), home and relative
   paths (`~/x`, `./x`, `../x`), Windows drive paths (`C:\\x`, `C:/x`), UNC shares
   (`\\\\server\\share`), and bare file names with a common file extension (`train.py`).
   A slash between words or digits ("and/or", "24/7", "km/h") is not a path.
5. `latex`: display math (`$$...$$`, `\\[...\\]`), inline math (`\\(...\\)`, `$...$` where the
   opening `$` is followed and the closing `$` preceded by a non-space, and the closing `$` is
   not followed by a digit, so "$5 and $10" is not math), `\\begin{...}`, and common commands
   (`\\frac`, `\\sqrt`, `\\sum`, Greek letters, ...).

Every regex starts at a rare literal (`.`, `/`, `\\`, `$`, `:`, `~`) so a clean text is scanned
fast; `benchmarks/synth_filters.py` measures the throughput.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from nexus_o.speech.language import CJK_IDEOGRAPH_CLASS, count_cjk, count_latin_words

REASONS: tuple[str, ...] = ("length", "non_text_ratio", "url", "path", "latex")


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the paper: 200 words / 200 Chinese characters, non-text ratio 0.2."""

    max_en_words: int = 200
    max_zh_chars: int = 200
    max_non_text_ratio: float = 0.2

    def __post_init__(self) -> None:
        if self.max_en_words < 1 or self.max_zh_chars < 1:
            raise ValueError(
                f"length limits must be >= 1, got {self.max_en_words} words, {self.max_zh_chars} chars"
            )
        if not 0.0 <= self.max_non_text_ratio <= 1.0:
            raise ValueError(f"max_non_text_ratio must be in [0, 1], got {self.max_non_text_ratio}")


_PUNCT_CLASS = (
    re.escape(string.punctuation)
    + "\u00b7\u2010-\u2027\u3001-\u303f\ufe10-\ufe1f\ufe30-\ufe6f"
    + "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
)
_NON_TEXT_RE = re.compile(f"[^\\sA-Za-z{_PUNCT_CLASS}{CJK_IDEOGRAPH_CLASS}]")

# Common generic TLDs and country codes that are not English words (see the module docstring).
_TLDS = (
    "com|org|net|edu|gov|mil|info|biz|io|ai|co|dev|xyz|"
    "cn|uk|de|jp|fr|ru|au|ca|nl|br|kr|hk|tw|eu|ch|se|es|pl|ir|vn|sg|nz|za|mx|ar|cz|gr|"
    "fi|dk|pt|hu|ro|ua|tr|il|ie|cc|tv|ly|gg|fm|gl|ws|la"
)
_FILE_EXTS = (
    "py|pyc|ipynb|js|ts|tsx|jsx|json|jsonl|yaml|yml|toml|ini|cfg|conf|txt|csv|tsv|md|rst|html|"
    "htm|css|xml|sql|c|cc|cpp|h|hpp|java|kt|rs|rb|php|sh|bash|ps1|exe|dll|"
    "pdf|docx?|xlsx?|pptx?|png|jpe?g|gif|bmp|svg|webp|mp3|wav|flac|ogg|mp4|mkv|avi|mov|zip|"
    "tar|gz|tgz|rar|7z|pt|pth|ckpt|onnx|safetensors|npy|npz|pkl"
)

# Each branch starts with its literal trigger and checks the context before it with a
# lookbehind placed after the literal, so that `re` can skip to candidate positions quickly.
_URL_RE = re.compile(
    r"://(?<=[A-Za-z0-9+.-]://)\S"  # scheme://...
    r"|\.(?<=(?<![\w.])www\.)[A-Za-z0-9-]"  # www.example...
    rf"|\.(?<=[A-Za-z0-9-]\.)(?:{_TLDS})(?![A-Za-z0-9_-])"  # bare domain, lower-case TLD
)
_PATH_RE = re.compile(
    r"/(?<![\w)\]}.:/~]/)[\w.-]+/[\w.-]+"  # /usr/bin, /home/user/x
    r"|\./(?<!\w\./)(?<!\w\.\./)[\w.-]"  # ./x ../x
    r"|~/(?<!\S~/)"  # ~/x
    r"|:[\\/](?<=[A-Za-z]:[\\/])(?<![A-Za-z]{2}:[\\/])(?!/)"  # C:\x C:/x (not a scheme's ://)
    r"|\\\\[\w.$-]+\\"  # \\server\share
    rf"|\.(?<=[\w-]\.)(?:{_FILE_EXTS})(?![A-Za-z0-9_-])"  # train.py, notes.txt
)
_LATEX_RE = re.compile(
    r"\$\$.+?\$\$"  # display $$...$$
    r"|\\\[.+?\\\]|\\\(.+?\\\)"  # \[...\]  \(...\)
    r"|\$(?<![\\$]\$)(?=[^\s$])[^$\n]{1,300}?(?<=[^\s\\$])\$(?![\d$])"  # inline $...$
    r"|\\begin\{|\\end\{"  # environments
    r"|\\(?:[dt]?frac|sqrt|sum|prod|int|oint|lim|infty|partial|nabla|cdot|times|div|pm|leq?|"
    r"geq?|neq|approx|equiv|sim|propto|in|notin|subset|cup|cap|forall|exists|rightarrow|"
    r"Rightarrow|to|mapsto|mathbf|mathrm|mathbb|mathcal|mathit|text|textbf|operatorname|"
    r"left|right|hat|bar|vec|dot|overline|underline|binom|log|ln|exp|sin|cos|tan|max|min|"
    r"alpha|beta|gamma|Gamma|delta|Delta|epsilon|varepsilon|zeta|eta|theta|Theta|lambda|"
    r"Lambda|mu|nu|xi|pi|Pi|rho|sigma|Sigma|tau|phi|Phi|varphi|chi|psi|Psi|omega|Omega)"
    r"(?![A-Za-z])",
    re.DOTALL,
)

# One scan finds any pattern at all; only texts with a hit (a few percent) pay for the ordered
# per-rule scans that name the reason.
_ANY_PATTERN_RE = re.compile("|".join(r.pattern for r in (_URL_RE, _PATH_RE, _LATEX_RE)), re.DOTALL)


def non_text_ratio(text: str) -> float:
    """Share of non-whitespace characters of `text` that are not text characters; 0.0 if blank."""
    n_visible = sum(map(len, text.split()))
    if n_visible == 0:
        return 0.0
    return len(_NON_TEXT_RE.findall(text)) / n_visible


def check_text(text: str, config: FilterConfig = FilterConfig()) -> str | None:
    """Return the name of the first rule that rejects `text` (see `REASONS`), or None to keep it.

    A blank text is rejected as "empty", before the rules. (`filter_file` adds "encoding" for
    lines that are not UTF-8.)
    """
    words = text.split()
    if not words:
        return "empty"
    n_cjk = count_cjk(text)
    n_latin = count_latin_words(text) if n_cjk else 0
    # Same decision as language.detect_language, inlined to count the ideographs once.
    if n_cjk and n_cjk >= n_latin:
        if n_cjk + n_latin > config.max_zh_chars:
            return "length"
    elif len(words) > config.max_en_words:
        return "length"
    # Exact division: a ratio of exactly 0.2 (e.g. 1/5) compares equal to the threshold and is kept.
    if len(_NON_TEXT_RE.findall(text)) / sum(map(len, words)) > config.max_non_text_ratio:
        return "non_text_ratio"
    if not _ANY_PATTERN_RE.search(text):
        return None
    if _URL_RE.search(text):
        return "url"
    if _PATH_RE.search(text):
        return "path"
    if _LATEX_RE.search(text):
        return "latex"
    return None


@dataclass
class FilterSummary:
    """Counts of one `filter_file` run: lines read, lines kept, and rejections per reason."""

    total: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


def filter_file(
    in_path: Path, kept_path: Path, rejects_path: Path, config: FilterConfig = FilterConfig()
) -> FilterSummary:
    """Filter a text file with one text a line into two JSONL files.

    Kept lines go to `kept_path` as {"line": n, "text": ...}; rejected ones to `rejects_path` as
    {"line": n, "text": ..., "reason": ...} with a reason from `REASONS`, or "empty" for a blank
    line, or "encoding" for a line that is not UTF-8 (its text then holds the bytes decoded with
    backslash escapes, so that a user can find it). Line numbers start at 1. The run never stops
    on a bad line.
    """
    in_path = Path(in_path)
    if not in_path.is_file():
        raise FileNotFoundError(f"input text file not found: {in_path}")
    summary = FilterSummary()
    with (
        in_path.open("rb") as src,
        Path(kept_path).open("w", encoding="utf-8") as kept,
        Path(rejects_path).open("w", encoding="utf-8") as rejects,
        tqdm(total=in_path.stat().st_size, unit="B", unit_scale=True, desc="filter") as bar,
    ):
        pending = 0
        for number, raw in enumerate(src, start=1):
            pending += len(raw)
            if pending >= 1 << 20:  # refresh the bar once a MiB; per line would cost more than the rules
                bar.update(pending)
                pending = 0
            line = raw.rstrip(b"\r\n")
            try:
                text = line.decode("utf-8")
                reason = check_text(text, config)
            except UnicodeDecodeError:
                text, reason = line.decode("utf-8", errors="backslashreplace"), "encoding"
            summary.total += 1
            record = {"line": number, "text": text}
            if reason is None:
                summary.kept += 1
                kept.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                summary.rejected[reason] = summary.rejected.get(reason, 0) + 1
                record["reason"] = reason
                rejects.write(json.dumps(record, ensure_ascii=False) + "\n")
        bar.update(pending)
    return summary
