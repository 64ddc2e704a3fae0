"""ASR backends on a piper sentence: Whisper tiny.en, multilingual Whisper base, pocketsphinx,
transformers Whisper (tiny random checkpoint), plus resampling and the base-model assembly."""

from __future__ import annotations

import numpy as np
import pytest

from nexus_o.eval.metrics import utterance_error_rate
from nexus_o.speech.asr import get_asr_backend, to_16k
from nexus_o.speech.asr.faster_whisper import FasterWhisperBackend, whisper_base_dir
from nexus_o.speech.tts import Speaker, get_tts_backend

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def piper_sentence():
    """(wav [T] float32, 22050) of SENTENCE spoken by piper joe."""
    speaker = Speaker("piper", "en_US-joe-medium", "en", noise_scale=0.5)
    return get_tts_backend("piper").synthesize(SENTENCE, speaker)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return whisper_base_dir(tmp_path_factory.mktemp("cache"))


def test_whisper_tiny_en_transcribes_piper(piper_sentence):
    asr = get_asr_backend("whisper-tiny.en", cpu_threads=2)
    transcript = asr.transcribe(*piper_sentence, language="en")
    assert utterance_error_rate(SENTENCE, transcript.text, "en", protocol="default") < 0.3
    assert 0.0 < transcript.confidence <= 1.0
    with pytest.raises(ValueError, match="not 'zh'"):
        asr.transcribe(*piper_sentence, language="zh")


def test_whisper_base_is_assembled_once_and_transcribes_english(base_dir, piper_sentence):
    assert sorted(p.name for p in base_dir.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    mtime = (base_dir / "model.bin").stat().st_mtime_ns
    assert whisper_base_dir(base_dir.parent) == base_dir
    assert (base_dir / "model.bin").stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert not [p for p in base_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left

    asr = FasterWhisperBackend(base_dir, cpu_threads=2)
    assert asr.languages == ("en", "zh")
    transcript = asr.transcribe(*piper_sentence)  # language detected
    assert transcript.language == "en"
    assert utterance_error_rate(SENTENCE, transcript.text, "en", protocol="default") < 0.3


def test_whisper_base_rebuilds_a_truncated_model(base_dir):
    broken = base_dir.parent / "broken"
    broken.mkdir()
    (broken / "whisper-base-ct2").mkdir()
    (broken / "whisper-base-ct2" / "model.bin").write_bytes(b"half")
    rebuilt = whisper_base_dir(broken)
    assert (rebuilt / "model.bin").stat().st_size == (base_dir / "model.bin").stat().st_size


def test_pocketsphinx_returns_text(piper_sentence):
    transcript = get_asr_backend("pocketsphinx").transcribe(*piper_sentence)
    assert "fox" in transcript.text.split() or "dog" in transcript.text.split()
    assert 0.0 <= transcript.confidence <= 1.0
    with pytest.raises(ValueError, match="pocketsphinx"):
        get_asr_backend("pocketsphinx").transcribe(*piper_sentence, language="zh")


def _tiny_whisper_checkpoint(folder, tokenizer_json):
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_json))
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=51865, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
    )  # fmt: skip
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257, is_multilingual=True,
        lang_to_id={"<|en|>": 50259, "<|zh|>": 50260}, task_to_id={"transcribe": 50359, "translate": 50358},
        no_timestamps_token_id=50363, max_length=448,
    )  # fmt: skip
    model.save_pretrained(folder)


def test_transformers_whisper_loads_local_folder_and_windows_long_audio(tmp_path, base_dir):
    _tiny_whisper_checkpoint(tmp_path, base_dir / "tokenizer.json")
    asr = get_asr_backend(f"transformers:{tmp_path}")
    asr.max_new_tokens = 4
    rng = np.random.default_rng(0)
    short = asr.transcribe(0.1 * rng.standard_normal(16000).astype(np.float32), 16000, language="en")
    assert isinstance(short.text, str) and 0.0 < short.confidence <= 1.0
    calls = []
    original = asr._transcribe_window
    asr._transcribe_window = lambda audio, language: calls.append(audio.size) or original(audio, language)
    asr.transcribe(0.1 * rng.standard_normal(16000 * 31).astype(np.float32), 16000, language="zh")
    assert calls == [16000 * 30, 16000]  # two windows, nothing clipped
    with pytest.raises(FileNotFoundError, match="config.json"):
        get_asr_backend(f"transformers:{tmp_path / 'missing'}")


def test_to_16k_resamples_and_validates():
    assert to_16k(np.zeros(22050, np.float32), 22050).shape == (16000,)
    assert to_16k(np.zeros(16000, np.int16), 16000).dtype == np.float32
    with pytest.raises(ValueError, match="mono"):
        to_16k(np.zeros((2, 100), np.float32), 16000)
    with pytest.raises(ValueError, match="empty"):
        to_16k(np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="NaN"):
        to_16k(np.array([0.0, np.nan], np.float32), 16000)
    with pytest.raises(ValueError, match="sample rate"):
        to_16k(np.zeros(10, np.float32), 0)
    with pytest.raises(ValueError, match="unknown ASR backend"):
        get_asr_backend("kaldi")
