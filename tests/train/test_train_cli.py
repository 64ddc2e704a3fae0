"""`nexus-o train` end to end on tiny data: each stage, resume, bad input."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from nexus_o.cli import app
from tests.train.conftest import TINY_DECODER

runner = CliRunner()


def _config(tmp_path: Path, stage: str, model: dict, phases: list[dict], **extra) -> Path:
    cfg = {"stage": stage, "model": model, "phases": phases, "output_dir": str(tmp_path / "out"),
           "batch_size": 2, "logging_steps": 1, "save_steps": 2, "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, **extra}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train(path: Path, *overrides: str):
    result = runner.invoke(app, ["train", "--config", str(path), *overrides], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _losses(out: Path, phase: str) -> list[float]:
    history = json.loads((out / phase / "log_history.json").read_text())
    return [h["loss"] for h in history if "loss" in h]


def _eval_losses(out: Path, phase: str) -> list[float]:
    history = json.loads((out / phase / "log_history.json").read_text())
    return [h["eval_loss"] for h in history if "eval_loss" in h]


def test_three_stages_two_steps_each(tmp_path, tiny_world):
    s1 = _config(tmp_path / "s1", "stage1_align", {"preset": "tiny"},
                 [{"name": "align", "train": [str(tiny_world["asr"])], "eval": [str(tiny_world["asr"])],
                   "max_steps": 2}], eval_steps=1)
    out = _train(s1)
    assert len(_eval_losses(tmp_path / "s1" / "out", "align")) == 2  # validation loss beside the training loss
    assert "audio_encoder" in out.output and "trainable" in out.output
    s1_final = tmp_path / "s1" / "out" / "final"
    assert (s1_final / "model.safetensors").is_file() and (tmp_path / "s1" / "out" / "loss.png").is_file()

    s2 = _config(tmp_path / "s2", "stage2_sft", {"path": str(s1_final)},
                 [{"name": "sft", "train": [str(tiny_world["vqa"]), str(tiny_world["asr"])], "max_steps": 2}])
    _train(s2)
    s2_final = tmp_path / "s2" / "out" / "final"

    s3 = _config(tmp_path / "s3", "stage3_speech", {"path": str(s2_final), "speech_decoder": TINY_DECODER},
                 [{"name": "tts", "train": [str(tiny_world["tts"])], "eval": [str(tiny_world["tts"])], "max_steps": 2},
                  {"name": "s2s", "train": [str(tiny_world["tts"])], "max_steps": 1}], eval_steps=1)
    _train(s3)
    assert len(_eval_losses(tmp_path / "s3" / "out", "tts")) == 2  # the speech decoder's validation loss
    from nexus_o.bundle.loading import load_model

    model = load_model(tmp_path / "s3" / "out" / "final").model
    before = load_model(s2_final).model
    assert model.speech_decoder is not None
    # stage 3 trained only the decoder: the LLM is untouched
    assert torch.equal(model.vl.lm_head.weight, before.vl.lm_head.weight)
    assert len(_losses(tmp_path / "s3" / "out", "tts")) == 2


def test_resume_continues_exactly(tmp_path, tiny_world):
    phases = [{"name": "align", "train": [str(tiny_world["asr"])], "max_steps": 4}]
    whole = _config(tmp_path / "whole", "stage1_align", {"preset": "tiny"}, phases)
    _train(whole)
    reference = _losses(tmp_path / "whole" / "out", "align")

    part = _config(tmp_path / "part", "stage1_align", {"preset": "tiny"}, phases)
    _train(part, "stop_after_steps=2")  # ends at step 2 with checkpoint-2, as a killed run would
    ckpt = tmp_path / "part" / "out" / "align" / "checkpoint-2"
    assert (ckpt / "checkpoint_complete.json").is_file()
    assert not (tmp_path / "part" / "out" / "final").exists()
    _train(part, "resume=auto")
    resumed = _losses(tmp_path / "part" / "out", "align")
    assert len(reference) == 4 and len(resumed) == 4  # the log history carries over
    assert resumed == pytest.approx(reference, rel=1e-5, abs=1e-6)


def test_unknown_key_and_missing_checkpoint(tmp_path, tiny_world):
    path = _config(tmp_path, "stage1_align", {"preset": "tiny"},
                   [{"name": "align", "train": [str(tiny_world["asr"])], "max_steps": 2}])
    result = runner.invoke(app, ["train", "--config", str(path), "optim.lrr=1"])
    assert result.exit_code == 2 and "optim.lrr: unknown key" in result.output
    bad = _config(tmp_path / "b", "stage2_sft", {"path": str(tmp_path / "nope")},
                  [{"name": "sft", "train": [str(tiny_world["asr"])], "max_steps": 2}])
    with pytest.raises(FileNotFoundError, match="no model checkpoint"):
        runner.invoke(app, ["train", "--config", str(bad)], catch_exceptions=False)


def test_bad_manifest_lines_are_skipped_and_logged(tmp_path, tiny_world):
    manifest = tmp_path / "mixed.jsonl"
    lines = tiny_world["asr"].read_text().splitlines()
    broken = json.loads(lines[0])
    broken["audios"] = [str(tiny_world["asr"].parent / "missing.wav")]
    manifest.write_text("\n".join([lines[0].replace('"a0.wav"', f'"{tiny_world["asr"].parent}/a0.wav"'),
                                   "{not json", json.dumps(broken)]) + "\n")
    path = _config(tmp_path, "stage1_align", {"preset": "tiny"},
                   [{"name": "align", "train": [str(manifest)], "max_steps": 1}])
    _train(path)
    rejects = (tmp_path / "out" / "rejects.jsonl").read_text()
    assert '"line": 2' in rejects and '"line": 3' in rejects


def test_stage3_pointer_decoder_trains_on_word_timings(tmp_path, tiny_world):
    """A "pointer" speech decoder needs the codec's frame rate: without a codec a clear error,
    with one stage 3 trains and saves it with its codec."""
    from nexus_o.codecs.builtin import fit_builtin_codec
    from nexus_o.bundle.loading import build_preset, load_model
    from nexus_o.bundle.omni import OmniModel
    from nexus_o.train.trainer import save_final
    from tests.conftest import tone

    pointer = {**TINY_DECODER, "alignment": "pointer"}
    phases = [{"name": "tts", "train": [str(tiny_world["tts"])], "max_steps": 2}]
    no_codec = _config(tmp_path / "none", "stage3_speech", {"preset": "tiny", "speech_decoder": pointer}, phases)
    with pytest.raises(ValueError, match="no codec"):
        runner.invoke(app, ["train", "--config", str(no_codec)], catch_exceptions=False)

    codec = fit_builtin_codec([tone(2.0, 22050)], 4, 64, iters=2, sample_rate=22050, progress=False)
    save_final(OmniModel(*build_preset("tiny"), codec), tmp_path / "with_codec")
    s3 = _config(tmp_path / "s3", "stage3_speech", {"path": str(tmp_path / "with_codec"), "speech_decoder": pointer},
                 phases, group_by_length=True)
    _train(s3)
    trained = load_model(tmp_path / "s3" / "out" / "final")
    assert trained.model.speech_decoder.alignment == "pointer" and trained.codec is not None
    assert len(_losses(tmp_path / "s3" / "out", "tts")) == 2


def test_sample_length_reads_speech_frames_else_text(tmp_path, tiny_world):
    import numpy as np

    from nexus_o.train.run import sample_length

    np.save(tmp_path / "c.npy", np.zeros((4, 17), dtype=np.int64))
    messages = [{"role": "user", "content": "Say: red"}, {"role": "assistant", "content": "red"}]
    assert sample_length({"speech_codes_file": str(tmp_path / "c.npy"), "messages": messages}) == 17
    assert sample_length({"speech_codes_file": None, "speech_codes": [[1, 2, 3]] * 4, "messages": messages}) == 3
    assert sample_length({"speech_codes_file": None, "speech_codes": [], "messages": messages}) == 11


def test_speed_switches_keep_the_losses(tmp_path, tiny_world):
    """Chunked LM loss, selective checkpointing and the sdpa backend train exactly as the defaults."""
    phases = [{"name": "sft", "train": [str(tiny_world["vqa"]), str(tiny_world["asr"])], "max_steps": 2}]
    plain = _config(tmp_path / "plain", "stage2_sft", {"preset": "tiny"}, phases)
    _train(plain)
    fast = _config(tmp_path / "fast", "stage2_sft", {"preset": "tiny"}, phases, lm_loss="chunked",
                   gradient_checkpointing=True, checkpoint_every_n_layers=2, attn_implementation="sdpa")
    _train(fast)
    reference, got = _losses(tmp_path / "plain" / "out", "sft"), _losses(tmp_path / "fast" / "out", "sft")
    assert len(got) == 2 and got == pytest.approx(reference, rel=1e-4)
