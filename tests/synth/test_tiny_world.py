"""The tiny world: valid manifests, closed vocabulary, held-out splits, byte-identical rebuilds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from nexus_o.cli import app
from nexus_o.data.manifest import validate_manifest
from nexus_o.eval.runner import load_items, parse_task_specs
from nexus_o.synth.config import tiny_world_config
from nexus_o.synth.tiny_world import build_tiny_world
from nexus_o.synth.tiny_world.images import ImageSpec, render
from nexus_o.synth.tiny_world.plan import plan_world
from nexus_o.synth.tiny_world.vocab import DIGIT_WORDS
from tests.synth.test_runner import snapshot


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_manifest_is_valid_and_counted(world):
    out, report = world
    on_disk = json.loads((out / "world.json").read_text())
    assert {k: v for k, v in report.items() if k not in ("seconds", "clips_per_second")} == on_disk
    for name, lines in on_disk["manifests"].items():
        if name.startswith("codec_fit"):
            continue
        check = validate_manifest(out / name, progress=False)
        assert check.ok and check.lines == lines > 0, (name, check.bad[:2])
    assert on_disk["clips"]["failed"] == 0 and on_disk["clips"]["samples_dropped"] == 0
    for task, manifest in parse_task_specs("asr,vqa,tts", out / "test"):  # what `nexus-o eval` reads
        assert len(load_items(task, manifest)) == on_disk["manifests"][f"test/{task.name}.jsonl"]
    fit = sorted((out / "codec_fit").glob("*.wav"))
    joe_texts = set(on_disk["tts_texts"]["train"])  # the codec never hears a held-out recording
    assert len(fit) == on_disk["manifests"]["codec_fit/audio.jsonl"] == len(joe_texts) + 4  # + codec_fit_espeak
    prompt = json.loads((out / "sample_prompt.json").read_text())
    assert prompt["messages"][-1]["role"] == "user" and (out / prompt["audios"][0]).is_file()


def test_answers_are_single_words_of_the_vocabulary(world):
    out, report = world
    words = set(report["vocab"]["answers"])
    assert words == {"red", "green", "blue", "circle", "square", "one", "two", "seven"}
    for name in ("stage2_train.jsonl", "stage3_s2s.jsonl", "test_vqa.jsonl", "val_vqa.jsonl"):
        for line in read_jsonl(out / name):
            if line["task"] != "asr":
                assert line["messages"][-1]["content"] in words, (name, line["id"])
    for line in read_jsonl(out / "stage1_train.jsonl"):
        assert set(line["messages"][-1]["content"].split()) <= words
    tts = [line for line in read_jsonl(out / "stage3_tts.jsonl") if not line["id"].startswith("tts-splice-")]
    assert all(line["speech"]["audio"].startswith("clips/audio/") for line in tts)
    assert {line["messages"][-1]["content"] for line in tts} == set(report["tts_texts"]["train"])


def test_test_speakers_and_images_are_held_out(world):
    out, report = world
    train, test = set(report["speakers"]["train"]), set(report["speakers"]["test"])
    assert train and test and not train & test
    speaker_of = {c["id"]: c["speaker"] for c in read_jsonl(out / "clips" / "manifest.jsonl")}
    for name, pool in (("test_asr.jsonl", test), ("test_vqa.jsonl", test), ("stage1_train.jsonl", train),
                       ("stage2_train.jsonl", train)):
        for line in read_jsonl(out / name):
            for audio in line.get("audios", []):
                assert speaker_of[Path(audio).stem] in pool, (name, audio)
    plan = plan_world(tiny_world_config("small"))
    seen = {(i.kind, i.colour, i.label, i.placement) for i in plan.images["train"]}
    held_out = [(i.kind, i.colour, i.label, i.placement) for i in plan.images["val"] + plan.images["test"]]
    assert not seen & set(held_out) and len(set(held_out)) == len(held_out)
    assert not set(report["tts_texts"]["test"][:1]) & set(report["tts_texts"]["train"])  # an unseen phrase


def test_a_build_redone_after_losing_shards_is_byte_identical(world, tmp_path):
    out, _ = world
    reference = snapshot(out)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    markers = sorted((copy / "clips" / "shards").glob("*.done"))
    markers[-1].unlink()  # as if the build had been killed before finishing its last shard
    shutil.rmtree(copy / "clips" / "audio" / markers[-1].stem)
    spliced = sorted((copy / "clips" / "spliced").glob("*.wav"))
    assert len(spliced) == 8
    spliced[0].unlink()
    spliced[1].write_bytes(spliced[1].read_bytes()[:-2] + b"\x00\x01")  # a changed sample is rewritten
    (spliced[2].parent / "splice-09999.wav").write_bytes(b"stale")  # from a config with more phrases
    for manifest in copy.glob("*.jsonl"):
        manifest.unlink()
    shutil.rmtree(copy / "images")
    build_tiny_world(copy, seed=0, size="small", progress=False)
    assert snapshot(copy) == reference


def test_images_are_reproducible_and_drawn_in_colour():
    spec = ImageSpec("x", "train", "digit", "blue", DIGIT_WORDS[7], placement=0, seed=5)
    image = render(spec, 112)
    assert image.size == (112, 112) and image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(render(spec, 112)))
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    blue = (pixels[:, 2] - pixels[:, 0] > 80).mean()
    assert 0.02 < blue < 0.5  # the digit covers part of the canvas, in blue
    assert not np.array_equal(np.asarray(image), np.asarray(render(ImageSpec("x", "train", "digit", "blue",
                                                                             "seven", 0, seed=6), 112)))


def test_the_plan_depends_on_the_seed_only():
    first, again = plan_world(tiny_world_config("small")), plan_world(tiny_world_config("small"))
    assert first.clips == again.clips and first.images == again.images
    other = plan_world(tiny_world_config("small", overrides=["seed=1"]))
    assert [c.speaker for c in other.clips.values()] != [c.speaker for c in first.clips.values()]
    assert sum(c.verify for c in first.clips.values()) == 2


def test_cli_rejects_a_bad_size_or_key(tmp_path):
    result = CliRunner().invoke(app, ["synth", "tiny-world", "--out", str(tmp_path), "--size", "huge"])
    assert result.exit_code == 2 and "unknown tiny-world size 'huge'" in result.output
    config = tmp_path / "world.yaml"
    config.write_text("colours: [red, teal]\n")
    result = CliRunner().invoke(app, ["synth", "tiny-world", "--out", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 2 and "unknown colour(s) ['teal']" in result.output
