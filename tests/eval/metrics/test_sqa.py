import pytest

from nexus_o.eval.metrics import EmptyReferencesError, MetricInputError, parse_answer_line, sqa_accuracy
from nexus_o.eval.metrics.sqa import answer_matches


def test_parse_answer_line_both_formats():
    assert parse_answer_line("Paris | the city of Paris") == ["Paris", "the city of Paris"]
    assert parse_answer_line('["Paris", "a | b"]') == ["Paris", "a | b"]
    assert parse_answer_line("rock|paper") == ["rock|paper"]  # the separator needs its spaces


def test_parse_answer_line_bad_json_names_the_line():
    with pytest.raises(MetricInputError, match="refs.txt:3: starts with"):
        parse_answer_line('["Paris",', "refs.txt:3")
    with pytest.raises(MetricInputError, match="list of strings"):
        parse_answer_line("[1, 2]")


@pytest.mark.parametrize(
    ("answer", "output", "lang", "expected"),
    [
        ("Paris", "The capital of France is PARIS.", "en", True),
        ("four", "A dog has 4 legs.", "en", True),  # Whisper normaliser: four -> 4
        ("4", "It was in 14 BC", "en", False),  # whole words, not digits inside numbers
        ("cat", "Let us concatenate", "en", False),
        ("New York", "I live in new york city", "en", True),
        ("北京", "中國的首都是北京。", "zh", True),
        ("臺北", "台北", "zh", True),  # traditional answer, simplified output
        ("上海", "北京", "zh", False),
        ("!!!", "anything", "en", False),  # an empty answer never matches
    ],
)
def test_answer_matches(answer, output, lang, expected):
    assert answer_matches(answer, output, lang) is expected


def test_sqa_accuracy_hand_computed():
    refs = ["Paris | Lutetia", '["four", "4"]', "cat", "Jupiter"]
    hyps = ["I believe it's Lutetia.", "fourteen", "concatenate", "The answer is Jupiter!"]
    result = sqa_accuracy(refs, hyps)
    assert result.per_item == (True, False, False, True)
    assert result.correct == 2 and result.scored == 4 and result.score == pytest.approx(0.5)


def test_sqa_accepts_answer_lists():
    assert sqa_accuracy([["Mars", "the red planet"]], ["It is the Red Planet."]).score == 1.0


def test_sqa_rejects_non_text_answers():
    with pytest.raises(MetricInputError, match=r"references\[0\]\[1\] is int"):
        sqa_accuracy([["a", 1]], ["a"])


def test_sqa_skips_items_without_answers():
    result = sqa_accuracy(["?", "yes"], ["no", "Yes."])
    assert result.skipped_empty_refs == 1 and result.per_item == (None, True)
    assert result.score == 1.0
    with pytest.raises(EmptyReferencesError):
        sqa_accuracy(["?", "[]"], ["a", "b"])
