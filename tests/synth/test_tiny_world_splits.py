"""The tiny world holds out what it claims: every disjointness rule, on the small world's files and
on the default world's plan, checked here by code of its own, and the checker's own refusals."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nexus_o.synth.config import tiny_world_config
from nexus_o.synth.tiny_world.plan import plan_world
from nexus_o.synth.tiny_world.splits import SplitLeakError, check_plan, check_world, contains_words
from nexus_o.speech.tts import held_out_speaker_pools


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reply(line: dict) -> str:
    return line["messages"][-1]["content"]


def inside(held: str, text: str) -> bool:
    """Independent of `contains_words`: padded substring search on whole words."""
    return f" {held} " in f" {text} "


def voice_of(name: str) -> str:
    """"espeak:en-us+f3:p60:r1.1" -> "en-us+f3" (voice and variant)."""
    return name.split(":")[1]


def test_contains_words_is_word_for_word():
    assert contains_words("one red square", "red square") and contains_words("red square", "red square")
    assert not contains_words("red squares", "red square") and not contains_words("bred", "red")
    assert not contains_words("square red", "red square") and not contains_words("red", "")


def test_small_world_files_hold_out_tts_texts_recordings_and_voices(world):
    out, report = world
    spoken = [reply(line) for name in ("stage3_tts.jsonl", "stage3_s2s.jsonl") for line in read_jsonl(out / name)]
    test = read_jsonl(out / "test" / "tts.jsonl")
    assert test and all(len(reply(line).split()) >= 2 for line in test)  # word pairs, never single words
    for line in test + read_jsonl(out / "val_tts.jsonl"):
        assert not [t for t in spoken if inside(reply(line), t)], reply(line)
    # no test recording is a training target or a codec-fit clip
    train_files = set()
    for name in ("stage1_train.jsonl", "stage2_train.jsonl", "stage3_tts.jsonl", "stage3_s2s.jsonl"):
        for line in read_jsonl(out / name):
            paths = line.get("audios", []) + ([line["speech"]["audio"]] if "speech" in line else [])
            train_files |= {os.path.realpath(out / p) for p in paths}
    fit = [out / "codec_fit" / row["audio"] for row in read_jsonl(out / "codec_fit" / "audio.jsonl")]
    fit_inodes = {f.stat().st_ino for f in fit}
    for line in test:
        recording = out / "test" / line["speech"]["audio"]
        assert os.path.realpath(recording) not in train_files
        assert recording.stat().st_ino not in fit_inodes and recording.stem not in {f.stem for f in fit}
    # the codec is fitted on training audio only: joe's training texts and training espeak clips
    joe_train = {f"joe-{t.replace(' ', '-')}" for t in report["tts_texts"]["train"]}
    assert {f.stem for f in fit if f.stem.startswith("joe-")} == joe_train
    assert all(f.stem.startswith(("joe-", "asr-train-")) for f in fit)
    # held-out ASR / VQA speakers are whole voices never heard in training
    speaker_of = {c["id"]: c["speaker"] for c in read_jsonl(out / "clips" / "manifest.jsonl")}
    heard = {speaker_of[Path(a).stem] for name in ("stage1_train.jsonl", "stage2_train.jsonl")
             for line in read_jsonl(out / name) for a in line.get("audios", [])}
    tested = {speaker_of[Path(a).stem] for name in ("test/asr.jsonl", "test/vqa.jsonl")
              for line in read_jsonl(out / name) for a in line.get("audios", [])}
    assert tested and not {voice_of(s) for s in tested} & {voice_of(s) for s in heard}
    assert report["splits_checked"]["files"]["held_out_tts_lines"] == len(test) + len(read_jsonl(out / "val_tts.jsonl"))
    seen = report["asr_test_texts"]
    assert seen["seen"] + seen["unseen"] == len(read_jsonl(out / "test" / "asr.jsonl"))


def test_default_world_plan_holds_out_texts_voices_and_images():
    plan = plan_world(tiny_world_config("default"))  # pure: no audio is rendered
    assert len(plan.tts_texts["test"]) == 24 and len(plan.tts_spliced) == 400
    spoken = [*plan.tts_texts["train"], *plan.tts_spliced, *(qa.answer for qa in plan.qa["train"])]
    for held in plan.tts_texts["test"] + plan.tts_texts["val"]:
        assert not [t for t in spoken if inside(held, t)], held
    train_voices = {(s.voice, s.variant) for s in plan.train_speakers}
    assert not {(s.voice, s.variant) for s in plan.test_speakers} & train_voices
    assert not {s.variant for s in plan.test_speakers} & {s.variant for s in plan.train_speakers}
    seen = {(i.kind, i.colour, i.label, i.placement) for i in plan.images["train"]}
    assert not seen & {(i.kind, i.colour, i.label, i.placement) for i in plan.images["test"]}
    assert check_plan(plan)["tts_held_out_texts"] == 30


def test_check_plan_names_every_leak():
    plan = plan_world(tiny_world_config("small"))
    held = plan.tts_texts["test"][0]
    plan.tts_spliced = [*plan.tts_spliced, f"one {held}"]
    plan.test_speakers = [*plan.test_speakers, plan.train_speakers[0]]
    with pytest.raises(SplitLeakError, match=r"2 leak\(s\)") as err:
        check_plan(plan)
    assert f"'{held}' is inside the training text 'one {held}'" in str(err.value)
    assert plan.train_speakers[0].name in str(err.value)


def test_check_world_refuses_a_leaked_recording_or_text(world, tmp_path):
    out, _ = world
    copy = tmp_path / "w"
    shutil.copytree(out, copy)
    assert check_world(copy)["codec_fit_clips"] > 0
    test = read_jsonl(copy / "test" / "tts.jsonl")[0]
    recording = copy / "test" / test["speech"]["audio"]
    shutil.copyfile(recording, copy / "codec_fit" / recording.name)
    with (copy / "codec_fit" / "audio.jsonl").open("a") as f:
        f.write(json.dumps({"audio": recording.name}) + "\n")
    with (copy / "stage3_tts.jsonl").open("a") as f:
        line = read_jsonl(copy / "stage3_tts.jsonl")[0]
        line["messages"][-1]["content"] = f"seven {reply(test)}"
        f.write(json.dumps(line) + "\n")
    with pytest.raises(SplitLeakError) as err:
        check_world(copy)
    assert "among the codec-fit clips" in str(err.value) and f"inside the training reply 'seven {reply(test)}'" in str(err.value)


def test_held_out_speaker_pools_split_the_variants():
    train, test = held_out_speaker_pools("en", 40, 8, seed=3)
    assert len(train) == 40 and len(test) == 8
    assert not {s.variant for s in train} & {s.variant for s in test}
    assert (train, test) == held_out_speaker_pools("en", 40, 8, seed=3)
    assert held_out_speaker_pools("en", 40, 8, seed=4) != (train, test)


def test_the_spelled_out_world_config_is_the_default_world():
    spelled = Path(__file__).resolve().parents[2] / "configs" / "synth" / "tiny_world.yaml"
    assert tiny_world_config("default", str(spelled)) == tiny_world_config("default")
