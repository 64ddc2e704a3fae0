"""The two synthesis branches as runner processors: every failure is a reject, runs are reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from nexus_o.cli import app
from nexus_o.config.loader import ConfigError, load_config
from nexus_o.data.manifest import validate_manifest
from nexus_o.speech.asr import Transcript
from nexus_o.synth.config import SynthRunConfig
from nexus_o.synth.pipeline import TextToSpeechProcessor, read_text_items, run_synthesis
from nexus_o.synth.rewrite import RuleBasedRewriter
from nexus_o.synth.runner import run_shards
from nexus_o.synth.speech_to_text import SpeechToTextProcessor, list_audio_items
from nexus_o.speech.tts import Speaker, SpeakerSampler, SynthesisError
from nexus_o.synth.verify import ASRVerifier
from tests.synth.test_runner import snapshot


class CodeTTS:
    """Writes the text's UTF-8 bytes as samples, so `CodeASR` can read them back; "FAIL" fails."""

    name = "code"

    def synthesize(self, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
        if "FAIL" in text:
            raise SynthesisError("the backend choked", text, speaker)
        return np.frombuffer(text.encode(), np.uint8).astype(np.float32) / 255.0, 16000


class CodeASR:
    """Reads `CodeTTS` audio back; anything with "mumble" is heard wrong. Confidence = peak level."""

    name = "code-asr"

    def transcribe(self, wav, sample_rate, language=None) -> Transcript:
        text = bytes(np.rint(np.asarray(wav) * 255).astype(np.uint8)).decode(errors="replace")
        return Transcript("something else" if "mumble" in text else text, float(np.abs(wav).max()), language)


POOL = {"en": [Speaker("code", "alto", "en"), Speaker("code", "bass", "en")]}


def run_processor(processor, items, out: Path):
    return run_shards(items, lambda: processor, out, shard_size=3, fingerprint={"test": True}, workers=1,
                      progress=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_text_to_speech_records_every_failure_and_goes_on(tmp_path):
    lines = [b"The red circle is big.", b"Visit https://example.com now.", b"caf\xe9 au lait", b"",
             b"Please FAIL on this one.", b"I mumble my words.", "正方形是红色的。".encode(), b"Seven blue stars."]
    processor = TextToSpeechProcessor(task="asr", tts=CodeTTS(), sampler=SpeakerSampler(POOL, seed=3),
                                      verifier=ASRVerifier(CodeASR()), seed=3, sample_rate=None)
    summary = run_processor(processor, lines, tmp_path)
    rejects = {r["item"]: r for r in read_jsonl(tmp_path / "rejects.jsonl")}
    assert {i: r["reason"] for i, r in rejects.items()} == {
        1: "url", 2: "encoding", 3: "empty", 4: "tts_failed", 5: "asr_mismatch", 6: "no_speaker_pool"}
    assert rejects[2]["detail"] == "byte 0xe9 at column 4" and rejects[4]["detail"] == "the backend choked"
    assert rejects[5]["transcript"] == "something else"
    manifest = read_jsonl(tmp_path / "manifest.jsonl")
    assert [m["id"] for m in manifest] == ["00000000", "00000007"]
    assert [m["messages"][-1]["content"] for m in manifest] == ["The red circle is big.", "Seven blue stars."]
    assert validate_manifest(tmp_path / "manifest.jsonl", progress=False).ok
    stats = summary.to_dict()
    assert stats["stages"] == {"input": 8, "prepared": 5, "synthesized": 2, "written": 2}
    assert sum(r["checked"] for r in stats["asr_pass_rate"]["code-asr"].values()) == 3


def test_spoken_chat_with_images_rewrite_and_target_voice(tmp_path):
    Image.new("RGB", (32, 32), "red").save(tmp_path / "red.png")
    lines = [json.dumps({"query": "What colour is the square?", "answer": "red", "images": ["red.png"]}),
             json.dumps({"query": "Write a Python function that sorts a list.", "answer": "sorted(x)"}),
             "{not json", json.dumps({"query": "What shape is it?", "answer": "a star", "images": ["gone.png"]}),
             json.dumps({"query": "Hi?", "answer": "hello", "voice": "x"})]
    (tmp_path / "chat.jsonl").write_text("\n".join(lines) + "\n")
    processor = TextToSpeechProcessor(task="s2s_chat", tts=CodeTTS(), sampler=SpeakerSampler(POOL),
                                      target=Speaker("code", "narrator", "en"), rewriter=RuleBasedRewriter(),
                                      sample_rate=None, input_dir=tmp_path)
    run_processor(processor, read_text_items(tmp_path / "chat.jsonl"), tmp_path / "out")
    reasons = [r["reason"] for r in read_jsonl(tmp_path / "out" / "rejects.jsonl")]
    assert reasons == ["unsuitable:code", "invalid_item", "missing_image", "invalid_item"]
    (line,) = read_jsonl(tmp_path / "out" / "manifest.jsonl")
    assert line["task"] == "s2s_chat" and line["images"] == [str(tmp_path / "red.png")]
    user = next(m for m in line["messages"] if m["role"] == "user")
    assert user["content"].startswith("<image>") and "<audio>" in user["content"]
    assert line["messages"][-1]["content"] == "red"
    spoken, _ = sf.read(tmp_path / "out" / line["audios"][0])
    heard = CodeASR().transcribe(spoken, 16000).text
    assert heard == "Hey, could you tell me what colour the square is?"  # the rewritten question is spoken
    assert validate_manifest(tmp_path / "out" / "manifest.jsonl", progress=False).ok


def test_speech_to_text_flags_low_confidence_and_rejects_bad_files(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    t = np.arange(8000) / 16000
    sf.write(audio / "a_loud.wav", 0.9 * np.sin(2 * np.pi * 200 * t), 16000)
    sf.write(audio / "b_quiet.wav", 0.1 * np.sin(2 * np.pi * 200 * t), 16000)
    sf.write(audio / "c_empty.wav", np.zeros(0), 16000)
    (audio / "d_corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    (audio / "notes.txt").write_text("not audio")
    items = list_audio_items(audio, [".wav"])
    assert [Path(p).name for p in items] == ["a_loud.wav", "b_quiet.wav", "c_empty.wav", "d_corrupt.wav"]
    processor = SpeechToTextProcessor(asr=CodeASR(), min_confidence=0.5)
    summary = run_processor(processor, items, tmp_path / "out")
    (line,) = read_jsonl(tmp_path / "out" / "manifest.jsonl")
    assert line["audios"] == [items[0]] and line["task"] == "asr"
    (review,) = read_jsonl(tmp_path / "out" / "review.jsonl")
    assert review["reason"] == "low_confidence" and review["confidence"] == pytest.approx(0.1, abs=1e-3)
    assert review["sample"]["audios"] == [items[1]]
    assert [(r["item"], r["reason"]) for r in read_jsonl(tmp_path / "out" / "rejects.jsonl")] == [
        (2, "empty_audio"), (3, "unreadable_audio")]
    assert summary.lines == {"manifest": 1, "rejects": 2, "review": 1}


def _espeak_config(tmp_path: Path, out: str, workers: int) -> SynthRunConfig:
    texts = [f"The {c} {s} is number {n}." for c, s, n in zip(["red", "blue", "green"] * 4, ["star", "square"] * 6,
                                                            range(12))]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    return SynthRunConfig(input=str(tmp_path / "texts.txt"), output_dir=str(tmp_path / out), shard_size=3,
                          workers=workers, verify=None, tts={"pools": {"en": {"size": 30}}})


def without_config(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name: data for name, data in files.items() if name != "config.yaml"}


def test_real_espeak_run_is_identical_across_processes_and_after_a_redo(tmp_path):
    one = run_synthesis(_espeak_config(tmp_path, "one", workers=1), progress=False)
    two = run_synthesis(_espeak_config(tmp_path, "two", workers=2), progress=False)
    assert one.lines["manifest"] == 12 and two.stats.to_dict() == one.stats.to_dict()
    reference = without_config(snapshot(tmp_path / "one"))  # config.yaml names the folder and workers
    assert without_config(snapshot(tmp_path / "two")) == reference  # speakers and audio: not the worker's
    for marker in sorted((tmp_path / "two" / "shards").glob("*.done"))[1::2]:
        marker.unlink()  # as if the run had died before finishing these shards
    (tmp_path / "two" / "manifest.jsonl").unlink()
    again = run_synthesis(_espeak_config(tmp_path, "two", workers=2), progress=False)
    assert again.shards_skipped == 2 and without_config(snapshot(tmp_path / "two")) == reference


def test_cli_run_overrides_and_errors(tmp_path):
    config = tmp_path / "run.yaml"
    (tmp_path / "texts.txt").write_text("Red circle.\nhttps://x.org\n")
    config.write_text(f"input: {tmp_path / 'texts.txt'}\noutput_dir: {tmp_path / 'out'}\nverify: null\n")
    result = CliRunner().invoke(app, ["synth", "run", "--config", str(config), "workers=1", "shard_size=1"])
    assert result.exit_code == 0, result.output
    assert "manifest 1, rejects 1" in result.output and (tmp_path / "out" / "summary.json").is_file()
    result = CliRunner().invoke(app, ["synth", "run", "--config", str(config), "shard_sise=2"])
    assert result.exit_code == 2 and "shard_sise: unknown key" in result.output
    result = CliRunner().invoke(app, ["synth", "run", "--config", str(config), "--engine", "spark"])
    assert result.exit_code == 2 and "engine" in result.output
    result = CliRunner().invoke(app, ["synth", "run", "--config", str(config), "workers=1", "seed=5"])
    assert result.exit_code == 2 and "holds a different run" in result.output


def test_config_needs_a_target_voice_for_tts():
    with pytest.raises(ConfigError, match="set tts.target_voice"):
        load_config(SynthRunConfig, overrides=["input=x.txt", "output_dir=out", "task=tts"])
