"""ASR round-trip verification: thresholds, metrics per language, and a real round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nexus_o.speech.asr import Transcript, get_asr_backend
from nexus_o.speech.tts import Speaker, get_tts_backend
from nexus_o.synth.verify import ASRVerifier, score_transcript


class ScriptedASR:
    """Returns a fixed transcript and records the language it was asked for."""

    name = "scripted"

    def __init__(self, text: str):
        self.text, self.languages = text, []

    def transcribe(self, wav, sample_rate, language=None):
        self.languages.append(language)
        return Transcript(self.text, 0.9, language)


AUDIO = (np.zeros(1600, np.float32), 16000)


def test_english_wer_threshold():
    asr = ScriptedASR("the quick brown fox jumps over the lazy cat")  # 1 error in 9 words
    text = "The quick brown fox jumps over the lazy dog."
    kept = ASRVerifier(asr, max_wer=0.2).check(*AUDIO, text)
    assert kept.passed and kept.metric == "wer" and kept.reason is None
    assert kept.score == pytest.approx(1 / 9)
    dropped = ASRVerifier(asr, max_wer=0.1).check(*AUDIO, text)
    assert not dropped.passed and dropped.reason == "asr_mismatch" and dropped.score == kept.score
    assert asr.languages == ["en", "en"]


def test_threshold_is_inclusive():
    asr = ScriptedASR("red green blue gold")
    assert ASRVerifier(asr, max_wer=0.25).check(*AUDIO, "red green blue pink").passed


def test_mandarin_uses_cer_after_normalisation():
    asr = ScriptedASR("正方形是什麼顏色")  # traditional script, no punctuation: same text after t2s
    result = ASRVerifier(asr, max_cer=0.0).check(*AUDIO, "正方形是什么颜色？")
    assert result.passed and result.metric == "cer" and result.score == 0.0
    asr_wrong = ScriptedASR("正方形是什么形状")  # 2 of 8 characters differ
    result = ASRVerifier(asr_wrong, max_cer=0.2).check(*AUDIO, "正方形是什么颜色？")
    assert not result.passed and result.score == pytest.approx(0.25)


def test_language_routing_and_empty_reference():
    en, zh = ScriptedASR("hello"), ScriptedASR("你好")
    verifier = ASRVerifier({"en": en, "zh": zh})
    assert verifier.check(*AUDIO, "你好").passed and zh.languages == ["zh"]
    assert verifier.check(*AUDIO, "Hello!").passed and en.languages == ["en"]
    empty = verifier.check(*AUDIO, "?!")
    assert not empty.passed and empty.reason == "empty_reference" and math.isinf(empty.score)
    with pytest.raises(ValueError, match="no ASR backend for 'zh'"):
        ASRVerifier({"en": en}).check(*AUDIO, "你好")
    with pytest.raises(ValueError, match="max_wer"):
        ASRVerifier(en, max_wer=-0.1)


def test_score_transcript():
    assert score_transcript("Twenty-one dogs.", "21 dogs", "en") == 0.0  # Whisper normaliser
    assert score_transcript("a b c d", "a b c", "en") == pytest.approx(0.25)


def test_real_round_trip_keeps_a_match_and_rejects_a_mismatch():
    speaker = Speaker("piper", "en_US-joe-medium", "en", noise_scale=0.5)
    wav, rate = get_tts_backend("piper").synthesize("The red square is next to the blue circle.", speaker)
    verifier = ASRVerifier(get_asr_backend("whisper-tiny.en", cpu_threads=2), max_wer=0.3)
    assert verifier.check(wav, rate, "The red square is next to the blue circle.").passed
    mismatch = verifier.check(wav, rate, "Seven green triangles are hiding under the table.")
    assert not mismatch.passed and mismatch.score > 0.5
