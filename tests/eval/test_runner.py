"""`nexus-o eval` on the tiny preset: scoring, reports, resume after a crash, tts, bad input, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from PIL import Image, ImageDraw

from nexus_o.bundle.omni import OmniModel
from nexus_o.eval import runner
from nexus_o.eval.metrics import bleu, parse_answer_line, wer
from nexus_o.eval.runner import run_eval
from nexus_o.eval.tasks import EvalError
from tests.conftest import tone
from tests.eval.fakes import FixedASR


def _line(prompt: str, answer: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], **extra}


def write_benchmarks(root: Path) -> Path:
    """Two or three items per task, with English and Chinese references, media included."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        sf.write(root / f"a{i}.wav", tone(0.3 + 0.1 * i, freq=200 + 60 * i), 16000)
    for i, colour in enumerate(["red", "blue"]):
        img = Image.new("RGB", (56, 56), "white")
        ImageDraw.Draw(img).rectangle([14, 14, 42, 42], fill=colour)
        img.save(root / f"i{i}.png")
    rows = {
        "asr": [_line("<audio>Transcribe.", "digit one", audios=["a0.wav"], task="asr", id="utt-0"),
                _line("<audio>Transcribe.", "digit two", audios=["a1.wav"]),
                _line("<audio>请转写这段录音。", "红色的方块", audios=["a2.wav"], task="asr:zh")],
        "s2tt": [_line("<audio>Translate into Chinese.", "红色的方块", audios=["a0.wav"], task="s2tt:en-zh"),
                 _line("<audio>Translate into English.", "a red square", audios=["a1.wav"])],
        "sqa": [_line("<audio>", "four | 4", audios=["a0.wav"]),
                _line("<audio>", '["Paris", "the city of Paris"]', audios=["a1.wav"])],
        "vqa": [_line("<image>What colour is the square?", "red", images=["i0.png"]),
                _line("<image>What colour is the square?", "blue | navy", images=["i1.png"])],
        "tts": [_line("Read this aloud: digit zero", "digit zero"), _line("Read this aloud: digit one", "digit one")],
    }
    for name, lines in rows.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
    return root


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmarks(tmp_path_factory.mktemp("bench"))


def count_generate(monkeypatch, model, fail_after: int | None = None) -> list[int]:
    """Count `model.generate` calls (one per batch); raise after `fail_after` calls, like a crash."""
    calls = [0]
    original = type(model).generate.__get__(model)  # the real one, even if patched before

    def generate(*args, **kwargs):
        if fail_after is not None and calls[0] >= fail_after:
            raise RuntimeError("simulated crash")
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", generate)
    return calls


def scores(results: dict) -> dict:
    return {name: task.get("scores") for name, task in results["tasks"].items()}


def test_every_task_is_scored_and_reported_beside_the_paper(tiny, bench, tmp_path):
    out = tmp_path / "out"
    results = run_eval(OmniModel(*tiny), "asr,s2tt,sqa,tts,vqa", bench, out, max_new_tokens=4, progress=False,
                       asr_backend=FixedASR(), model_name="tiny-test")
    tasks = results["tasks"]
    assert {n: t["status"] for n, t in tasks.items()} == {"asr": "ok", "s2tt": "ok", "sqa": "ok", "tts": "skipped",
                                                          "vqa": "ok"}
    assert "model has no speech output" in tasks["tts"]["reason"]
    assert [(g["lang"], g["metric"], g["items"]) for g in tasks["asr"]["scores"]] == [("en", "wer", 2), ("zh", "cer", 1)]
    assert [(g["lang"], g["metric"]) for g in tasks["s2tt"]["scores"]] == [("en", "bleu"), ("zh", "bleu")]
    # The scores are the metrics of the cached predictions.
    cached = [json.loads(line) for line in (out / "predictions" / "asr.jsonl").read_text().splitlines()]
    assert [c["line"] for c in cached] == [1, 2, 3] and cached[0]["id"] == "utt-0"
    expected = 100 * wer(["digit one", "digit two"], [c["prediction"] for c in cached[:2]]).score
    assert tasks["asr"]["scores"][0]["score"] == pytest.approx(expected)
    assert json.loads((out / "results.json").read_text()) == results
    report = (out / "results.md").read_text()
    for figure in ("NEXUS-O paper, Table 4", "3.35", "11.82", "12.32", "Table 3", "67.33", "Table 5", "23.17", "40.21",
                   "Table 6", "7.55", "13.02", "4.53", "4.11", "Table 2", "882.0", "2315.5", "Qwen2.5-VL",
                   "this run: tiny-test", "skipped: model has no speech output"):
        assert figure in report, figure


def test_a_perfect_model_scores_perfectly(tiny, bench, tmp_path, monkeypatch):
    references = {}
    for name in ("asr", "s2tt", "sqa", "vqa"):
        for line in (bench / f"{name}.jsonl").read_text().splitlines():
            row = json.loads(line)
            references[(row["messages"][0]["content"], (row.get("audios") or row.get("images"))[0])] = \
                parse_answer_line(row["messages"][1]["content"])[0]

    def perfect(model, processor, prompts, max_new_tokens):  # the first answer, capitalised, with a full stop
        return [references[(p["messages"][0]["content"], Path((p["audios"] or p["images"])[0]).name)].capitalize()
                + "." for p in prompts]

    monkeypatch.setattr(runner, "generate_text", perfect)
    results = run_eval(OmniModel(*tiny), "asr,s2tt,sqa,vqa", bench, tmp_path, progress=False)
    got = {(n, g["lang"]): g["score"] for n, gs in scores(results).items() for g in gs}
    assert got[("asr", "en")] == 0 and got[("asr", "zh")] == 0  # case and "." are normalised away
    assert got[("sqa", "en")] == 100 and got[("vqa", "en")] == 100
    assert got[("s2tt", "zh")] == pytest.approx(bleu(["红色的方块"], ["红色的方块."], "zh").score)
    assert got[("s2tt", "en")] == pytest.approx(bleu(["a red square"], ["A red square."], "en").score)


def test_an_interrupted_run_resumes_without_recomputing(tiny, bench, tmp_path, monkeypatch):
    model = tiny[0]
    whole = run_eval(OmniModel(*tiny), "asr,vqa", bench, tmp_path / "whole", batch_size=1, max_new_tokens=4, progress=False)
    out = tmp_path / "resumed"
    count_generate(monkeypatch, model, fail_after=4)  # asr's 3 items, then 1 of vqa's 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_eval(OmniModel(*tiny), "asr,vqa", bench, out, batch_size=1, max_new_tokens=4, progress=False)
    vqa_cache = out / "predictions" / "vqa.jsonl"
    assert len(vqa_cache.read_text().splitlines()) == 1
    with open(vqa_cache, "a") as f:
        f.write('{"line": 2, "id": "line-2", "pred')  # a line torn by the crash
    calls = count_generate(monkeypatch, model)
    resumed = run_eval(OmniModel(*tiny), "asr,vqa", bench, out, batch_size=1, max_new_tokens=4, progress=False)
    assert calls[0] == 1  # only vqa's last item
    assert (resumed["tasks"]["asr"]["generated"], resumed["tasks"]["vqa"]["generated"]) == (0, 1)
    assert scores(resumed) == scores(whole)
    assert [json.loads(x)["line"] for x in vqa_cache.read_text().splitlines()] == [1, 2]
    run_eval(OmniModel(*tiny), "asr,vqa", bench, out, batch_size=2, max_new_tokens=4, progress=False)
    assert calls[0] == 1  # finished tasks are only rescored


def test_cached_predictions_of_changed_items_or_settings_are_refused(tiny, bench, tmp_path):
    data = write_benchmarks(tmp_path / "data")
    out = tmp_path / "out"
    run_eval(OmniModel(*tiny), "vqa", data, out, max_new_tokens=3, progress=False)
    with pytest.raises(EvalError, match="max_new_tokens: cached 3, now 5"):
        run_eval(OmniModel(*tiny), "vqa", data, out, max_new_tokens=5, progress=False)
    run_eval(OmniModel(*tiny), "vqa", data, out, max_new_tokens=3, asr_backend="pocketsphinx", progress=False)  # tts-only setting
    (data / "vqa.jsonl").write_text((data / "vqa.jsonl").read_text().replace('"red"', '"crimson"'))
    with pytest.raises(EvalError, match=r"vqa.jsonl:1 was made for a different item"):
        run_eval(OmniModel(*tiny), "vqa", data, out, max_new_tokens=3, progress=False)


def test_an_item_longer_than_the_context_is_skipped_and_recorded(tiny, bench, tmp_path):
    data = write_benchmarks(tmp_path / "data")
    long_line = _line("<image>" + "What colour is the circle? " * 1000, "red", images=["i0.png"])
    with open(data / "vqa.jsonl", "a") as f:
        f.write(json.dumps(long_line) + "\n")
    results = run_eval(OmniModel(*tiny), "vqa", data, tmp_path / "out", batch_size=4, max_new_tokens=3, progress=False)
    task = results["tasks"]["vqa"]
    assert task["status"] == "ok" and task["items"] == 3 and (task["skipped"], task["skipped_lines"]) == (1, [3])
    records = [json.loads(x) for x in (tmp_path / "out" / "predictions" / "vqa.jsonl").read_text().splitlines()]
    assert [("skipped" in r, r["line"]) for r in records] == [(False, 1), (False, 2), (True, 3)]
    assert records[2]["prediction"] == "" and "context_length_exceeded: the prompt has" in records[2]["skipped"]
    assert "over the limit of 4095" in records[2]["skipped"]
    assert "1 of 3 items skipped" in (tmp_path / "out" / "results.md").read_text()


def test_bad_input_gives_clear_errors(tiny, bench, tmp_path):
    with pytest.raises(EvalError, match="unknown task 'wer'; expected one of asr, s2tt, sqa, tts, vqa"):
        run_eval(OmniModel(*tiny), "asr,wer", bench, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match=r"task 'asr' not found: .*nowhere/asr\.jsonl"):
        run_eval(OmniModel(*tiny), "asr", tmp_path / "nowhere", tmp_path, progress=False)
    with pytest.raises(EvalError, match="no file: pass a data folder"):
        run_eval(OmniModel(*tiny), "asr", None, tmp_path, progress=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_line("What colour?", "red")) + "\n")
    with pytest.raises(EvalError, match=r"bad\.jsonl:1: a vqa item needs <image> or <video>"):
        run_eval(OmniModel(*tiny), f"vqa={bad}", None, tmp_path, progress=False)
    bad.write_text(json.dumps(_line("<audio>Hi", "hello", audios=[str(bench / "a0.wav")], task="s2tt")) + "\n")
    with pytest.raises(EvalError, match=r"bad\.jsonl:1: line task 's2tt' is not 'asr'"):
        run_eval(OmniModel(*tiny), f"asr={bad}", None, tmp_path, progress=False)
    bad.write_text(json.dumps(_line("<audio>Hi", "hello", audios=["missing.wav"])) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: .*missing\.wav"):
        run_eval(OmniModel(*tiny), f"asr={bad}", None, tmp_path, progress=False)


def test_tts_scores_the_models_transcribed_speech(speaking_tiny, bench, tmp_path):
    asr = FixedASR("Digit one!")
    results = run_eval(speaking_tiny, "tts", bench, tmp_path, max_new_tokens=3, max_speech_seconds=0.2,
                       asr_backend=asr, progress=False)
    (group,) = results["tasks"]["tts"]["scores"]
    assert (group["lang"], group["metric"], asr.calls) == ("en", "wer", 2)
    assert group["score"] == pytest.approx(25.0)  # seed-tts mean of 1/2 ("digit zero") and 0/2 ("digit one")
    cached = [json.loads(x) for x in (tmp_path / "predictions" / "tts.jsonl").read_text().splitlines()]
    wav, rate = sf.read(tmp_path / cached[0]["audio"])
    assert rate == 16000 and 0 < len(wav) <= 0.2 * rate + 160 and isinstance(cached[0]["reply_text"], str)


def test_tts_skips_a_text_longer_than_the_context(speaking_tiny, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    lines = [_line("Read this aloud: digit one", "digit one"), _line("Read this aloud.", "digit one " * 2500)]
    (data / "tts.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    asr = FixedASR("Digit one!")
    results = run_eval(speaking_tiny, "tts", data, tmp_path / "out", max_new_tokens=3, max_speech_seconds=0.2,
                       asr_backend=asr, progress=False)
    task = results["tasks"]["tts"]
    assert (task["status"], task["skipped"], task["skipped_lines"], asr.calls) == ("ok", 1, [2], 1)
    cached = [json.loads(x) for x in (tmp_path / "out" / "predictions" / "tts.jsonl").read_text().splitlines()]
    assert cached[1]["audio"] is None and cached[1]["prediction"] == ""
    assert "with its reply has" in cached[1]["skipped"] and "over this model's context of 4096" in cached[1]["skipped"]


def test_tts_refuses_a_language_the_asr_cannot_hear_before_generating(speaking_tiny, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "tts.jsonl").write_text(json.dumps(_line("请朗读：红色", "红色的方块"), ensure_ascii=False) + "\n")
    calls = count_generate(monkeypatch, speaking_tiny.model)
    with pytest.raises(EvalError, match=r"tts\.jsonl:1: a zh text, but ASR backend 'fixed' transcribes \('en',\)"):
        run_eval(speaking_tiny, "tts", data, tmp_path / "out", asr_backend=FixedASR(), progress=False)
    assert calls[0] == 0


def test_cli_eval_end_to_end(bench, tmp_path):
    from typer.testing import CliRunner

    from nexus_o.cli import app

    result = CliRunner().invoke(app, ["eval", "--model", "tiny", "--tasks", "vqa,tts", "--data", str(bench),
                                      "--out", str(tmp_path), "--limit", "1", "--max-new-tokens", "3"])
    assert result.exit_code == 0, result.output
    assert "results.md" in result.output and "VQA" in result.output
    results = json.loads((tmp_path / "results.json").read_text())
    # the tiny preset speaks (a random speech decoder through the shipped codec), so tts is scored
    assert results["tasks"]["vqa"]["items"] == 1 and results["tasks"]["tts"]["status"] == "ok"
    bad = CliRunner().invoke(app, ["eval", "--model", "tiny", "--tasks", "nope", "--data", str(bench),
                                   "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown task 'nope'" in bad.output

