"""The main job end to end on the small tiny world: figures that a broken model fails, honest
splits, validation losses, and a resumed run that only re-evaluates.

The small world is trained for a few minutes here (STEPS); the bounds are loose for that budget
but far from what an untrained or broken model gets (VQA chance is about 0.4 within a question
type and 1/8 over the answers; an untrained model scores 0 and a WER of 1). Stage 3 needs the most
steps: the decoder must say the answer word intelligibly (its loss on the held-out phrases rises
meanwhile: the plot shows the small world's decoder over-fitting, as it should be seen).
"""

import json

import soundfile as sf
from typer.testing import CliRunner

from nexus_o.cli import app
from nexus_o.eval.metrics.normalizers import normalize_en
from nexus_o.speech.asr import get_asr_backend
from nexus_o.synth.tiny_world.splits import check_world

STEPS = {"stage1_align": 80, "stage2_sft": 480, "stage3_speech": 600}
STAGES = ("stage1_align", "stage2_sft", "stage3_speech")


def transcribe(judge, path) -> str:
    wav, rate = sf.read(path, dtype="float32")
    return judge.transcribe(wav, rate, language="en").text


def report_vocab(out) -> set[str]:
    return set(json.loads((out / "data" / "world.json").read_text())["vocab"]["answers"])


def test_quickstart_small_end_to_end(tmp_path):
    out = tmp_path / "qs"
    args = ["quickstart", "--out", str(out), "--size", "small", *(f"--steps={k}={v}" for k, v in STEPS.items())]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    # quality a broken model fails
    assert report["vqa_accuracy"] >= 0.55, report
    assert report["asr_wer"] <= 0.5, report
    # the answer WAV is heard as the answer, or as the judge hears joe's own recording of it
    # (Whisper tiny.en hears joe's real "square" as "that's where": the judge's floor, not the model's)
    assert report["steps"] == STEPS and report["answer_text"] in report_vocab(out)
    judge = get_asr_backend("whisper-tiny.en")
    heard = normalize_en(transcribe(judge, out / "answer.wav"))
    clips = {c["id"]: c["audio"] for c in map(json.loads, (out / "data/clips/manifest.jsonl").read_text().splitlines())}
    real = normalize_en(transcribe(judge, out / "data/clips" / clips["joe-" + report["answer_text"]]))
    assert heard and heard in {normalize_en(report["answer_text"]), real}, (heard, real, report)
    # the judge's figures come with their floors, under both normalisations and two judges
    for key in ("tts_wer", "tts_wer_reference", "tts_wer_whisper_norm", "tts_wer_reference_whisper_norm",
                "tts_wer_whisper_base", "tts_wer_reference_whisper_base", "asr_wer_seen_texts"):
        assert report[key] is not None and report[key] >= 0.0, key
    assert set(report["tts_judges"]) == {"whisper-tiny.en", "whisper-base"}
    # the splits the figures were measured on are disjoint from training
    assert check_world(out / "data")["held_out_tts_lines"] > 0
    # every stage logged a validation loss beside its training loss, and drew both
    for stage in STAGES:
        histories = [json.loads(p.read_text()) for p in (out / stage).glob("*/log_history.json")]
        assert histories and all(any("eval_loss" in h for h in history) for history in histories), stage
        assert (out / stage / "loss.png").is_file()
    # the final checkpoint carries its codec and reloads with speech output
    from nexus_o.bundle.loading import load_model

    omni = load_model(report["checkpoint"])
    assert omni.codec is not None and omni.model.speech_decoder is not None
    # a second run finds every step done and only re-evaluates
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "already finished" in again.output
    assert json.loads((out / "report.json").read_text())["vqa_accuracy"] == report["vqa_accuracy"]


def test_quickstart_refuses_a_bad_steps_option(tmp_path):
    result = CliRunner().invoke(app, ["quickstart", "--out", str(tmp_path), "--steps", "stage4=10"])
    assert result.exit_code == 2 and "STAGE one of stage1_align, stage2_sft, stage3_speech" in result.output
    assert not any(tmp_path.iterdir())  # refused before any work
