import jiwer
import pytest

from nexus_o.eval.metrics import (
    EmptyReferencesError,
    LineCountMismatchError,
    MetricInputError,
    cer,
    error_rate,
    normalize_en,
    utterance_error_rate,
    wer,
)


def test_corpus_wer_hand_computed():
    # utterance 1: one insertion over 3 words; utterance 2: one deletion over 4 words
    result = wer(["The cat sat.", "On the mat today"], ["the cat sat down", "on mat today"])
    assert (result.substitutions, result.deletions, result.insertions) == (0, 1, 1)
    assert result.ref_units == 7 and result.errors == 2
    assert result.score == pytest.approx(2 / 7)
    assert result.per_utterance == pytest.approx((1 / 3, 1 / 4))


def test_seed_tts_mean_of_utterances_differs_from_corpus():
    refs, hyps = ["the cat sat", "on the mat today"], ["the cat sat down", "on mat today"]
    seed = wer(refs, hyps, protocol="seed-tts")
    assert seed.score == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert wer(refs, hyps).score == pytest.approx(2 / 7)
    assert seed.errors == 2 and seed.ref_units == 7  # totals are still reported


def test_wer_matches_jiwer_on_normalised_text():
    refs = ["Mister Smith went to Washington.", "It's twenty past three", "hello"]
    hyps = ["mr smith went to washington", "it is 20 past 3 o'clock", "yellow hello"]
    expected = jiwer.wer([normalize_en(r) for r in refs], [normalize_en(h) for h in hyps])
    assert wer(refs, hyps).score == pytest.approx(expected)


def test_numbers_and_contractions_are_not_errors_by_default():
    result = wer(["I don't have twenty one apples"], ["i do not have 21 apples"])
    assert result.score == 0.0 and result.ref_units == 6


def test_seed_tts_protocol_counts_contractions_as_errors():
    # "don't" vs "do not": one substitution + one insertion over 3 words
    assert wer(["I don't know"], ["I do not know"], protocol="seed-tts").score == pytest.approx(2 / 3)


def test_cer_traditional_equals_simplified():
    result = cer(["這是一個測試。"], ["这是一个测试"])
    assert result.score == 0.0 and result.ref_units == 6


def test_cer_hand_computed():
    # 气 -> 汽 substitution, 好 deleted: 2 errors over 6 characters
    result = cer(["今天天气很好！"], ["今天 天汽很"])
    assert (result.substitutions, result.deletions, result.insertions) == (1, 1, 0)
    assert result.score == pytest.approx(2 / 6)


def test_seed_tts_cer_is_mean_per_character():
    refs, hyps = ["你好", "今天天气很好"], ["你", "今天天气很好"]
    assert cer(refs, hyps, protocol="seed-tts").score == pytest.approx(0.25)
    assert cer(refs, hyps).score == pytest.approx(1 / 8)


def test_empty_hypothesis_is_all_deletions():
    result = wer(["a b c", "d"], ["", "d"])
    assert result.deletions == 3 and result.score == pytest.approx(3 / 4)


def test_insertions_can_push_wer_above_one():
    assert wer(["a"], ["b c d"]).score == pytest.approx(3.0)


@pytest.mark.parametrize("protocol", ["default", "seed-tts"])
def test_punctuation_only_reference_is_skipped_and_counted(protocol):
    result = wer(["?! --", "hello world"], ["something", "hello"], protocol=protocol)
    assert result.skipped_empty_refs == 1 and result.utterances == 2
    assert result.ref_units == 2 and result.insertions == 0
    assert result.score == pytest.approx(0.5)
    assert result.per_utterance == (None, 0.5)
    assert result.to_dict()["skipped_empty_refs"] == 1


def test_all_references_empty_is_a_clear_error():
    with pytest.raises(EmptyReferencesError, match="all 2 lines"):
        cer(["。", "！"], ["你", "好"])


def test_unequal_counts_name_both_counts():
    with pytest.raises(LineCountMismatchError, match="references has 2 lines but hypotheses has 1 lines"):
        wer(["a", "b"], ["a"])


def test_single_string_instead_of_list_is_rejected():
    with pytest.raises(MetricInputError, match="sequences"):
        wer("a b", "a b")


def test_non_text_item_is_named():
    with pytest.raises(MetricInputError, match=r"hypotheses\[1\] is NoneType"):
        wer(["a", "b"], ["a", None])


def test_unknown_protocol():
    with pytest.raises(ValueError, match="unknown protocol 'libri'"):
        error_rate(["a"], ["a"], "en", protocol="libri")


def test_to_dict_names_units():
    assert "ref_words" in wer(["a"], ["a"]).to_dict()
    assert "ref_chars" in cer(["你"], ["你"]).to_dict()


def test_utterance_error_rate():
    assert utterance_error_rate("Hello, world!", "hello word", "en") == pytest.approx(0.5)
    assert utterance_error_rate("你好世界", "你好", "zh") == pytest.approx(0.5)
    with pytest.raises(EmptyReferencesError):
        utterance_error_rate("?!", "hi", "en")


def test_seed_tts_whisper_compares_numerals_and_number_words_alike():
    refs, hyps = ["two blue", "seven red"], ["2. blue", "seven, bread"]
    assert wer(refs, hyps, protocol="seed-tts").score == pytest.approx((1 / 2 + 1 / 2) / 2)
    whisper = wer(refs, hyps, protocol="seed-tts-whisper")
    assert whisper.score == pytest.approx((0 + 1 / 2) / 2)  # "2." is "two"; "bread" is still wrong
    assert "mean over utterances" in whisper.summary()
