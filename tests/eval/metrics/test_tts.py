import numpy as np
import pytest

from nexus_o.eval.metrics import MetricInputError, tts_intelligibility

SR = 16000


def _synthesize(text):
    """A reversible fake TTS: code points as samples, 0.1 s of audio per character."""
    codes = np.array([ord(c) for c in text], dtype=np.float64)
    return np.repeat(codes, SR // 10) / 1e6, SR


def _transcribe_dropping_last_word(wav, sample_rate):
    text = "".join(chr(round(v * 1e6)) for v in wav[:: sample_rate // 10])
    return " ".join(text.split()[:-1])


def test_tts_intelligibility_en_seed_tts_mean():
    texts = ["Hello there, world!", "One two."]
    out = tts_intelligibility(texts, _synthesize, _transcribe_dropping_last_word, "en", progress=False)
    assert out["transcripts"] == ["Hello there,", "One"]
    assert out["per_utterance"] == pytest.approx([1 / 3, 1 / 2])
    assert out["score"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert out["protocol"] == "seed-tts" and out["metric"] == "wer"
    assert out["audio_seconds"] == pytest.approx(0.1 * sum(len(t) for t in texts))


def test_tts_intelligibility_zh_traditional_transcript_is_correct():
    out = tts_intelligibility(
        ["这是测试。"], _synthesize, lambda wav, sr: "這是測試", "zh", progress=False
    )
    assert out["metric"] == "cer" and out["score"] == 0.0 and out["ref_chars"] == 4


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (lambda t: (np.zeros((2, 100)), SR), "expected mono float"),
        (lambda t: (np.zeros(100, dtype=np.int16), SR), "expected mono float"),
        (lambda t: (np.zeros(100), 0), "positive int"),
        (lambda t: np.zeros(100), "must return"),
    ],
)
def test_bad_synthesizer_output_names_the_text(bad, match):
    with pytest.raises(MetricInputError, match=match) as info:
        tts_intelligibility(["hi there"], bad, lambda w, s: "", "en", progress=False)
    assert "texts[0] = 'hi there'" in str(info.value)


def test_transcriber_must_return_text():
    with pytest.raises(MetricInputError, match="transcribe returned NoneType"):
        tts_intelligibility(["hi"], _synthesize, lambda w, s: None, "en", progress=False)
