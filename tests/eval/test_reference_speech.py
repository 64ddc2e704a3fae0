"""The judge's floor: the tts ASR judge on the reference recordings."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from nexus_o.eval.reference_speech import reference_speech_error


class HearsTwoAsTo:
    def transcribe(self, wav, rate, language=None):
        return SimpleNamespace(text="to blue" if wav.size > 8000 else "red")


def test_reference_recordings_are_scored_with_the_tts_protocol(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(16000, dtype=np.float32), 16000)
    sf.write(tmp_path / "b.wav", np.zeros(4000, dtype=np.float32), 16000)
    lines = [{"messages": [{"role": "user", "content": "Say: two blue"}, {"role": "assistant", "content": "two blue"}],
              "speech": {"audio": "a.wav"}},
             {"messages": [{"role": "user", "content": "Say: red"},
                           {"role": "assistant", "content": [{"type": "text", "text": "red"}]}],
              "speech": {"audio": "b.wav"}}]
    manifest = tmp_path / "tts.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = reference_speech_error(manifest, HearsTwoAsTo())
    assert result.score == pytest.approx(0.25)  # "two" heard as "to": mean of 1/2 and 0/1 (per utterance)

    np.save(tmp_path / "c.npy", np.zeros((2, 3), dtype=np.int64))
    lines[1]["speech"] = {"codes": "c.npy"}  # a valid target, but no recording to transcribe
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ValueError, match=r"tts.jsonl:2: no speech.audio"):
        reference_speech_error(manifest, HearsTwoAsTo())
