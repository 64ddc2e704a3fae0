"""The main job end to end on the small tiny world with a token training budget."""

import json

from typer.testing import CliRunner

from nexus_o.cli import app


def test_quickstart_small_end_to_end(tmp_path):
    out = tmp_path / "qs"
    result = CliRunner().invoke(app, ["quickstart", "--out", str(out), "--size", "small", "--minutes", "0.1"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    for key in ("asr_wer", "vqa_accuracy", "tts_wer", "tts_wer_reference", "minutes", "checkpoint", "answer_wav",
                "loss_plots"):
        assert key in report, key
    assert 0.0 <= report["vqa_accuracy"] <= 1.0 and report["asr_wer"] >= 0.0 and report["tts_wer"] >= 0.0
    assert 0.0 <= report["tts_wer_reference"] <= 1.0  # Whisper tiny.en on the recorded voice
    assert (out / "answer.wav").read_bytes()[:4] == b"RIFF"
    assert all((out / stage / "loss.png").is_file() for stage in ("stage1_align", "stage2_sft", "stage3_speech"))
    # the final checkpoint carries its codec and reloads with speech output
    from nexus_o.models.loading import load_model

    model, _ = load_model(report["checkpoint"])
    assert model.codec is not None and model.speech_decoder is not None
    # a second run finds every step done and only re-evaluates
    again = CliRunner().invoke(app, ["quickstart", "--out", str(out), "--size", "small", "--minutes", "0.1"],
                               catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "already finished" in again.output
