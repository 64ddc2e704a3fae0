import pytest
import sacrebleu

from nexus_o.eval.metrics import EmptyReferencesError, LineCountMismatchError, bleu


def test_bleu_hand_computed():
    # n-gram precisions 5/6, 3/5, 2/4, 1/3, equal lengths so BP = 1
    result = bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert result.score == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert result.brevity_penalty == 1.0 and result.hyp_len == 6 and result.ref_len == 6


def test_bleu_equals_sacrebleu_13a():
    refs = ["The quick brown fox jumps over the lazy dog.", "It rained all day, didn't it?"]
    hyps = ["The fast brown fox jumped over the lazy dog.", "It rained all day, didn't it?"]
    expected = sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a")
    result = bleu(refs, hyps, "en")
    assert result.score == pytest.approx(expected.score)
    assert result.tokenizer == "13a" and "tok:13a" in result.signature


def test_bleu_into_chinese_uses_zh_tokenizer():
    refs, hyps = ["我爱北京天安门。"], ["我爱北京。"]
    result = bleu(refs, hyps, "zh")
    assert result.score == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score)
    assert result.score != pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score)


def test_bleu_with_empty_hypothesis_matches_sacrebleu():
    refs, hyps = ["a b c d e", "f g h i j"], ["a b c d e", ""]
    result = bleu(refs, hyps)
    assert result.score == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert result.hyp_len == 5 and result.brevity_penalty < 1


def test_bleu_errors():
    with pytest.raises(LineCountMismatchError, match="has 1 lines but"):
        bleu(["a"], ["a", "b"])
    with pytest.raises(EmptyReferencesError):
        bleu(["", " "], ["a", "b"])
    with pytest.raises(ValueError, match="unsupported language"):
        bleu(["a"], ["a"], "de")
