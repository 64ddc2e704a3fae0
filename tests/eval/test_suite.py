"""`nexus-o eval --suite paper` on a fake data root in the documented layout, with the tiny preset."""

from __future__ import annotations

import json
import sys

import pytest

from nexus_o.eval.runner import run_eval
from nexus_o.eval.suite import judges, layouts
from nexus_o.eval.suite.run import run_suite
from nexus_o.eval.tasks import EvalError
from tests.eval.fakes import FixedASR
from tests.eval.suite_data import write_data_root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_data_root(tmp_path_factory.mktemp("data_root"))


def test_suite_runs_every_benchmark_found_and_says_why_others_are_skipped(speaking_tiny, data_root, tmp_path):
    asr = FixedASR("digit one")
    results = run_suite(speaking_tiny, data_root, tmp_path, judges={"en": asr}, max_new_tokens=3,
                        max_speech_seconds=0.2, batch_size=2, model_name="tiny-speaking", progress=False)
    status = {name: b["status"] for name, b in results["benchmarks"].items()}
    assert status == {"librispeech_test_clean": "ok", "librispeech_test_other": "skipped", "aishell2_test": "ok",
                      "covost2_zh_en": "ok", "covost2_en_zh": "skipped", "llama_questions": "ok", "seed_tts_en": "ok",
                      "seed_tts_zh": "skipped"}
    b = results["benchmarks"]
    assert b["librispeech_test_other"]["reason"].startswith(f"no data: expected {data_root / 'LibriSpeech/test-other'}")
    assert b["seed_tts_zh"]["reason"] == "judge Paraformer-zh not given (--paraformer-zh DIR)"
    assert (b["aishell2_test"]["metric"], b["aishell2_test"]["items"]) == ("cer", 2)
    assert (b["covost2_zh_en"]["metric"], b["llama_questions"]["metric"]) == ("bleu", "accuracy")
    # Seed-TTS en: the fixed judge hears "digit one" for both texts: mean of 0/2 and 1/2 word errors.
    assert (b["seed_tts_en"]["metric"], b["seed_tts_en"]["score"], asr.calls) == ("wer", pytest.approx(25.0), 2)
    assert b["seed_tts_en"]["judge"] == "fixed (given in Python)" and "Seed-TTS" in b["seed_tts_en"]["normaliser"]
    # The figure is the runner's on the benchmark's manifest, written in our format.
    manifest = tmp_path / "manifests" / "librispeech_test_clean.jsonl"
    first = json.loads(manifest.read_text().splitlines()[0])
    assert first["task"] == "asr:en" and first["id"] == "1089-134686-0000" and first["audios"][0].endswith("0000.flac")
    again = run_eval(speaking_tiny, [f"asr={manifest}"], None, tmp_path / "again", max_new_tokens=3, batch_size=2,
                     progress=False)
    assert b["librispeech_test_clean"]["score"] == pytest.approx(again["tasks"]["asr"]["scores"][0]["score"])
    assert json.loads((tmp_path / "suite.json").read_text()) == results
    report = (tmp_path / "suite.md").read_text()
    for text in ("| LibriSpeech test-clean | NEXUS-O paper, Table 4 | WER↓ (%) |", "| 3.50 |", "| 3.35 |", "67.33",
                 "23.17", "13.02 [NEXUS-O (Fishspeech1.4)] · 4.11 [NEXUS-O (CosyVoice2.0)]", "Whisper English normaliser",
                 "OpenCC t2s", "tokenizer 13a", "none: scored against the references", "**this run: tiny-speaking**",
                 "skipped: judge Paraformer-zh not given", "MMMU", "Table 2 (vision) runs inside VLMEvalKit or lmms-eval",
                 "in-house real-scenario test set is not released"):
        assert text in report, text
    asr_row = next(line for line in report.splitlines() if line.startswith("| **this run"))  # Table 3 comes first
    assert asr_row.endswith(f"| {b['llama_questions']['score']:.2f} |")


def test_suite_stops_on_a_malformed_benchmark_before_loading_the_model(data_root, tmp_path):
    bad = tmp_path / "root"
    chapter = bad / "LibriSpeech" / "test-other" / "1" / "2"
    chapter.mkdir(parents=True)
    (chapter / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(EvalError, match=r"1-2\.trans\.txt:1: audio file .*1-2-0000\.flac not found"):
        run_suite("no-such-model", bad, tmp_path / "out", progress=False)
    (bad / "seedtts_testset" / "en").mkdir(parents=True)
    (bad / "seedtts_testset" / "en" / "meta.lst").write_text("only|three|fields\n")
    with pytest.raises(EvalError, match=r"meta\.lst:1: expected 'utterance\|prompt text\|prompt wav\|text'"):
        layouts.seed_tts("en")(bad / "seedtts_testset" / "en")
    test = bad / "AISHELL-2" / "Mic" / "test"
    test.mkdir(parents=True)
    (test / "wav.scp").write_text("A1 wav/A1.wav\n")
    (test / "trans.txt").write_text("A2 你好\n", encoding="utf-8")
    with pytest.raises(EvalError, match=r"trans\.txt:1: utterance A2 is not in wav\.scp"):
        layouts.aishell2(bad / "AISHELL-2")
    with pytest.raises(EvalError, match="unknown benchmark"):
        run_suite("tiny", data_root, tmp_path / "out", benchmarks="librispeech,mmlu")


def test_judges_are_checked_and_pinned(tmp_path, monkeypatch):
    from nexus_o.speech.asr import get_asr_backend
    from nexus_o.speech.tts.base import BackendUnavailableError

    v2 = tmp_path / "whisper-large-v2"
    v2.mkdir()
    (v2 / "config.json").write_text(json.dumps({"model_type": "whisper", "num_mel_bins": 80, "d_model": 1280}))
    with pytest.raises(EvalError, match="num_mel_bins=80, but Whisper-large-v3 has num_mel_bins=128"):
        judges.whisper_large_v3(v2)
    v3 = tmp_path / "whisper-large-v3"
    v3.mkdir()
    (v3 / "config.json").write_text(json.dumps({"model_type": "whisper", "num_mel_bins": 128, "d_model": 1280}))
    (v3 / "model.safetensors").write_bytes(b"0" * 10)
    judge = judges.whisper_large_v3(v3)
    assert judge.backend == f"transformers:{v3}" and len(judge.fingerprint) == 16
    (v3 / "model.safetensors").write_bytes(b"0" * 11)
    assert judges.whisper_large_v3(v3).fingerprint != judge.fingerprint
    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"x")
    assert judges.whisper_large_v3(ct2).backend == f"faster-whisper:{ct2}"
    with pytest.raises(EvalError, match="not a Whisper folder"):
        judges.whisper_large_v3(tmp_path)
    para = tmp_path / "paraformer-zh"
    para.mkdir()
    (para / "config.yaml").write_text("model: SeacoParaformer\n")
    assert judges.paraformer_zh(para).describe().startswith(f"Paraformer-zh (paraformer:{para}, sha256:")
    (para / "config.yaml").write_text("model: Conformer\n")
    with pytest.raises(EvalError, match="names no Paraformer model"):
        judges.paraformer_zh(para)
    assert judges.tts_judge("zh", tmp_path / "missing", None) == \
        (None, f"judge Paraformer-zh folder {tmp_path / 'missing'} not found (--paraformer-zh)")
    monkeypatch.setitem(sys.modules, "funasr", None)  # FunASR absent, whatever this machine has
    (para / "config.yaml").write_text("model: SeacoParaformer\n")
    with pytest.raises(BackendUnavailableError, match="FunASR is not installed: pip install funasr"):
        get_asr_backend(f"paraformer:{para}")


def test_cli_suite_paper_end_to_end(data_root, tmp_path):
    from typer.testing import CliRunner

    from nexus_o.cli import app

    args = ["eval", "--suite", "paper", "--data-root", str(data_root), "--model", "tiny", "--out", str(tmp_path),
            "--benchmarks", "librispeech_test_clean,seed_tts_en", "--limit", "1", "--max-new-tokens", "3",
            "--whisper-large-v3", str(tmp_path / "nowhere")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    suite = json.loads((tmp_path / "suite.json").read_text())
    assert list(suite["benchmarks"]) == ["librispeech_test_clean", "seed_tts_en"]
    assert suite["benchmarks"]["librispeech_test_clean"]["items"] == 1
    assert suite["benchmarks"]["seed_tts_en"]["reason"] == \
        f"judge Whisper-large-v3 folder {tmp_path / 'nowhere'} not found (--whisper-large-v3)"
    assert "suite.md" in result.output
    bad = CliRunner().invoke(app, ["eval", "--suite", "paper", "--model", "tiny", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--suite paper needs --data-root DIR" in bad.output
    bad = CliRunner().invoke(app, ["eval", "--model", "tiny", "--out", str(tmp_path), "--data-root", str(data_root)])
    assert bad.exit_code == 2 and "belong to --suite paper" in bad.output
