"""Text filters: every rule, its edge cases, the rule order, and language detection."""

from __future__ import annotations

import pytest

from nexus_o.synth.filters import REASONS, FilterConfig, check_text, non_text_ratio
from nexus_o.speech.language import detect_language


@pytest.mark.parametrize(
    "text, language",
    [
        ("What colour is the square?", "en"),
        ("正方形是什么颜色？", "zh"),
        ("我喜欢Python编程", "zh"),
        ("I love 北京 and Shanghai", "en"),  # 2 ideographs, 4 Latin words
        ("I love 北京", "zh"),  # a tie goes to zh: the en voice cannot read ideographs
        ("12345 !!!", "en"),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_english_length_boundary():
    assert check_text(" ".join(["word"] * 200) + ".") is None
    assert check_text(" ".join(["word"] * 201) + ".") == "length"


def test_chinese_length_boundary():
    assert check_text("字" * 200) is None
    assert check_text("字" * 201) == "length"
    # Chinese text counts embedded Latin words as one unit each.
    assert check_text("字" * 199 + " OK") is None
    assert check_text("字" * 200 + " OK") == "length"


def test_long_chinese_text_is_not_judged_by_its_few_spaces():
    assert check_text("字" * 150 + " " + "字" * 40) is None  # 2 "words", 190 characters


@pytest.mark.parametrize(
    "text, reason",
    [
        ("abcd1", None),  # 1 non-text of 5 = 0.2 exactly: kept
        ("abc12", "non_text_ratio"),  # 0.4
        ("Hello 😀", None),  # 1 of 6
        ("Hi 😀😀", "non_text_ratio"),  # 2 of 4
        ("In 2024 we won 3 to 1.", "non_text_ratio"),  # 6 digits of 16 visible characters
        ("你好，世界！“引号”……", None),  # CJK and general punctuation are text
        ("价格是１２３元。", "non_text_ratio"),  # fullwidth digits are not
        ("café au lait, très bon", None),  # é, è: 2 of 18
        ("→ ← ↑ ↓ ok", "non_text_ratio"),
    ],
)
def test_non_text_ratio(text, reason):
    assert check_text(text) == reason


def test_non_text_ratio_value():
    assert non_text_ratio("ab 12") == pytest.approx(0.5)
    assert non_text_ratio("   ") == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "Read more at https://example.org/page now",
        "ftp://files.server/x is down",
        "Go to www.example.org today",
        "Visit example.com for details",
        "see news.bbc.co.uk tonight",
        "Write to john@example.com please",
        "中文网站是baidu.com吗",
    ],
)
def test_urls_are_rejected(text):
    assert check_text(text) == "url"


@pytest.mark.parametrize(
    "text",
    [
        "Hi.there, how are you?",  # a missing space after a full stop is not a domain
        "I went home.It was late.",  # upper-case last label
        "Look at this.it is nice",  # "it" is a word, not a TLD here
        "e.g. this, i.e. that, U.S.A. too",
        "Note: the meeting is at noon",
    ],
)
def test_sentences_with_dots_are_kept(text):
    assert check_text(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "Run /usr/bin/python to start",
        "Edit ~/notes before bed",
        "Then call ./train with no flags",
        "Go up with ../data please",
        r"Open C:\Users\me and look",
        "Open C:/Users/me and look",
        r"Copy it to \\server\share now",
        "Please edit train.py and rerun",
        "The photo is saved as cat.jpg",
        "文件在data.csv里",
    ],
)
def test_paths_are_rejected(text):
    assert check_text(text) == "path"


@pytest.mark.parametrize("text", ["Yes and/or no, open 24/7", "He drove at 90 km/h", "他/她/它都可以"])
def test_slashes_between_words_are_not_paths(text):
    assert check_text(text, FilterConfig(max_non_text_ratio=1.0)) is None


@pytest.mark.parametrize(
    "text",
    [
        "Solve $x + y = 2$ for x",
        "Solve $$x^2 + y^2$$ please",
        r"Display \[ a + b \] here",
        r"Inline \( a + b \) here",
        r"We use \begin{align} a \end{align} here",
        r"the ratio \frac{a}{b} is small",
        r"let \alpha be small",
    ],
)
def test_latex_is_rejected(text):
    assert check_text(text, FilterConfig(max_non_text_ratio=1.0)) == "latex"


@pytest.mark.parametrize("text", ["It costs $5 and $10 now", "Pay $5,$6 or more", "That is $ 5 $ total"])
def test_dollar_amounts_are_not_latex(text):
    assert check_text(text, FilterConfig(max_non_text_ratio=1.0)) is None


def test_rules_fire_in_documented_order():
    assert REASONS == ("length", "non_text_ratio", "url", "path", "latex")
    long_url = " ".join(["word"] * 201) + " https://example.com"
    assert check_text(long_url) == "length"
    assert check_text("see 12345678 https://x.org") == "non_text_ratio"
    assert check_text("see https://x.org/usr/bin $x$") == "url"
    assert check_text("Run /usr/bin/x with $x$ now") == "path"


def test_blank_text_is_empty():
    assert check_text("  \t ") == "empty"


def test_config_thresholds_are_used():
    config = FilterConfig(max_en_words=3, max_zh_chars=2, max_non_text_ratio=0.5)
    assert check_text("one two three four", config) == "length"
    assert check_text("三个字", config) == "length"
    assert check_text("ab 12", config) is None
