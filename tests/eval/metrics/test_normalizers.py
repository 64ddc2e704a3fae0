import pytest

from nexus_o.eval.metrics.normalizers import (
    is_punctuation,
    normalize_answer,
    normalize_en,
    normalize_zh,
    seed_tts_normalize,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("twenty one", "21"),
        ("21", "21"),
        ("one hundred and five", "105"),
        ("Twenty-one dollars", "$21"),
        ("don't", "do not"),
        ("can't", "can not"),  # Whisper writes "can not", not "cannot"
        ("I won't go", "i will not go"),
        ("Hello, World!", "hello world"),
        ("uh I like the colour, hmm", "i like the color"),
        ("[music] yes (laughs)", "yes"),
        ("!!!", ""),
        # Whisper's own quirk, kept for parity with published numbers: an ellipsis that is not
        # removed as "a period not followed by a digit" survives as a "." token
        ("...", "."),
        ("It costs 5 dollars...", "it costs $5 ."),
        ("", ""),
    ],
)
def test_normalize_en_follows_whisper(text, expected):
    assert normalize_en(text) == expected


def test_spelled_and_digit_numbers_normalise_alike():
    assert normalize_en("I have twenty one apples.") == normalize_en("i have 21 apples")


def test_normalize_zh_traditional_equals_simplified():
    assert normalize_zh("這是一個測試。") == normalize_zh("这是一个测试") == "这是一个测试"


def test_normalize_zh_drops_punctuation_space_and_case():
    assert normalize_zh("你好， 世界！ABC「的」") == "你好世界abc的"


def test_seed_tts_en_keeps_apostrophe_and_lowercases():
    assert seed_tts_normalize("Don't STOP,  now!", "en") == "don't stop now"
    # no number or hyphen handling in this protocol: the hyphen is just removed
    assert seed_tts_normalize("Twenty-one", "en") == "twentyone"


def test_seed_tts_zh_strips_cjk_and_fullwidth_punctuation():
    assert seed_tts_normalize("價格＄５，好～ 嗎？", "zh") == "价格５好吗"


@pytest.mark.parametrize("char", ["。", "，", "、", "《", "“", "～", "＄", "$", "-", "'"])
def test_is_punctuation(char):
    assert is_punctuation(char)


@pytest.mark.parametrize("char", ["a", "中", "5", "５", " "])
def test_is_not_punctuation(char):
    assert not is_punctuation(char)


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        seed_tts_normalize("bonjour", "fr")
    with pytest.raises(ValueError, match="fr"):
        normalize_answer("bonjour", "fr")
