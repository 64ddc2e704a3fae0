import json

import pytest
import sacrebleu
from typer.testing import CliRunner

from nexus_o.cli import app

runner = CliRunner()


def _files(tmp_path, refs, hyps):
    ref_path, hyp_path = tmp_path / "refs.txt", tmp_path / "hyps.txt"
    ref_path.write_text("".join(line + "\n" for line in refs), encoding="utf-8")
    hyp_path.write_text("".join(line + "\n" for line in hyps), encoding="utf-8")
    return str(ref_path), str(hyp_path)


def _score(*args):
    return runner.invoke(app, ["score", *args])


def test_wer_text_output(tmp_path):
    refs, hyps = _files(tmp_path, ["The cat sat.", "On the mat today"], ["the cat sat down", "on mat today"])
    result = _score("wer", "--refs", refs, "--hyps", hyps)
    assert result.exit_code == 0, result.output
    assert "wer 28.57% [default, en, corpus]: 2 errors / 7 ref words (S=0 D=1 I=1)" in result.output


def test_wer_json_output(tmp_path):
    refs, hyps = _files(tmp_path, ["I have twenty one apples", "hello world"], ["i have 21 apples", ""])
    result = _score("wer", "--refs", refs, "--hyps", hyps, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    # "i have 21 apples" (4 words, all hit) + "hello world" (2 words, both deleted)
    assert out["metric"] == "wer" and out["score"] == pytest.approx(2 / 6)
    assert (out["errors"], out["ref_words"], out["deletions"], out["utterances"]) == (2, 6, 2, 2)


def test_cer_seed_tts_json(tmp_path):
    refs, hyps = _files(tmp_path, ["你好", "今天天氣很好。"], ["你", "今天天气很好"])
    result = _score("cer", "--refs", refs, "--hyps", hyps, "--protocol", "seed-tts", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["metric"] == "cer" and out["score"] == pytest.approx(0.25) and out["ref_chars"] == 8


def test_bleu_zh_json_matches_sacrebleu(tmp_path):
    ref_lines, hyp_lines = ["我爱北京天安门。", "今天天气很好。"], ["我爱北京。", "今天天气很好。"]
    refs, hyps = _files(tmp_path, ref_lines, hyp_lines)
    result = _score("bleu", "--refs", refs, "--hyps", hyps, "--lang", "zh", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    expected = sacrebleu.corpus_bleu(hyp_lines, [ref_lines], tokenize="zh").score
    assert out["tokenizer"] == "zh" and out["score"] == pytest.approx(expected)


def test_sqa_both_reference_formats(tmp_path):
    refs, hyps = _files(
        tmp_path, ["Paris | Lutetia", '["four", "4"]', "Mars"], ["It's Paris.", "Fourteen.", "Venus"]
    )
    result = _score("sqa", "--refs", refs, "--hyps", hyps)
    assert result.exit_code == 0, result.output
    assert "sqa 33.33% [en]: 1 / 3 correct, 3 items" in result.output


def test_unequal_line_counts_name_files_and_counts(tmp_path):
    refs, hyps = _files(tmp_path, ["a", "b", "c"], ["a"])
    result = _score("wer", "--refs", refs, "--hyps", hyps)
    assert result.exit_code == 2
    assert f"{refs} has 3 lines but {hyps} has 1 lines" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["wer", "--lang", "zh"], "use cer instead"),
        (["bleu", "--protocol", "seed-tts"], "applies to wer and cer only"),
        (["rouge"], "unknown metric 'rouge'"),
    ],
)
def test_bad_options_are_clear_errors(tmp_path, args, message):
    refs, hyps = _files(tmp_path, ["a"], ["a"])
    result = _score(*args, "--refs", refs, "--hyps", hyps)
    assert result.exit_code == 2 and message in result.output


def test_missing_file(tmp_path):
    _, hyps = _files(tmp_path, ["a"], ["a"])
    result = _score("wer", "--refs", str(tmp_path / "nope.txt"), "--hyps", hyps)
    assert result.exit_code == 2 and "nope.txt: no such file" in result.output
