"""The judge's floor: the tts ASR judge on the reference recordings, beside the model's speech."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from nexus_o.eval.reference_speech import judge_table, reference_speech_error


class HearsTwoAsTo:
    def __init__(self):
        self.calls = 0

    def transcribe(self, wav, rate, language=None):
        self.calls += 1
        return SimpleNamespace(text="to blue" if wav.size > 8000 else "red")


class WritesNumerals:
    def transcribe(self, wav, rate, language=None):
        return SimpleNamespace(text="2 blue" if wav.size > 8000 else "Red.")


def _manifest(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(16000, dtype=np.float32), 16000)
    sf.write(tmp_path / "b.wav", np.zeros(4000, dtype=np.float32), 16000)
    lines = [{"messages": [{"role": "user", "content": "Say: two blue"}, {"role": "assistant", "content": "two blue"}],
              "speech": {"audio": "a.wav"}},
             {"messages": [{"role": "user", "content": "Say: red"},
                           {"role": "assistant", "content": [{"type": "text", "text": "red"}]}],
              "speech": {"audio": "b.wav"}}]
    manifest = tmp_path / "tts.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return manifest, lines


def test_reference_recordings_are_scored_with_the_tts_protocol(tmp_path):
    manifest, lines = _manifest(tmp_path)
    result = reference_speech_error(manifest, HearsTwoAsTo())
    assert result.score == pytest.approx(0.25)  # "two" heard as "to": mean of 1/2 and 0/1 (per utterance)

    np.save(tmp_path / "c.npy", np.zeros((2, 3), dtype=np.int64))
    lines[1]["speech"] = {"codes": "c.npy"}  # a valid target, but no recording to transcribe
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ValueError, match=r"tts.jsonl:2: no speech.audio"):
        reference_speech_error(manifest, HearsTwoAsTo())


def test_judge_table_puts_model_and_floor_side_by_side_under_both_normalisers(tmp_path):
    manifest, _ = _manifest(tmp_path)
    sf.write(tmp_path / "m1.wav", np.zeros(4000, dtype=np.float32), 16000)  # the model says "red" for "two blue"
    speech = {1: tmp_path / "m1.wav", 2: tmp_path / "b.wav"}
    first = HearsTwoAsTo()
    table = judge_table(manifest, speech, {"first": first, "numerals": WritesNumerals()},
                        known={"first": {2: "red"}})
    assert first.calls == 1 + 2  # the model's line 2 came from `known`; both references transcribed
    assert table["first"]["seed-tts"] == {"model": 0.5, "reference": 0.25, "gap": 0.25}
    assert table["numerals"]["seed-tts"]["reference"] == 0.25  # "2" is not "two" as written ...
    assert table["numerals"]["seed-tts-whisper"]["reference"] == 0.0  # ... but is under Whisper's normaliser
    assert table["transcripts"]["numerals"]["reference"] == ["2 blue", "Red."]
    with pytest.raises(ValueError, match=r"no model speech for line\(s\) \[2\]"):
        judge_table(manifest, {1: tmp_path / "m1.wav"}, {"first": first})


def test_paper_figures_cite_the_paper_by_title_and_arxiv_id():
    from importlib.resources import files

    cited = json.loads(files("nexus_o.eval").joinpath("paper_results.json").read_text())["paper"]
    assert "arXiv:2503.01879" in cited and "Omni-Perceptive And -Interactive Model" in cited
    assert "/" not in cited  # a citation, not a path on somebody's disk
