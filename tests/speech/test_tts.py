"""TTS backends (espeak-ng, piper), speakers, pools, the per-sample draw, and failure handling."""

from __future__ import annotations

import multiprocessing
import sys
import time
import types
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from nexus_o.speech.tts import (
    BackendUnavailableError,
    Speaker,
    SpeakerSampler,
    SynthesisError,
    TTSRouter,
    get_tts_backend,
    sample_speakers,
    speaker_pool,
)
from nexus_o.speech.tts.base import VoiceSpace
from nexus_o.speech.tts.espeak import EspeakBackend


@pytest.fixture(scope="module")
def espeak():
    return get_tts_backend("espeak")


@pytest.fixture(scope="module")
def piper():
    return get_tts_backend("piper")


def _assert_speech(wav, sample_rate, expected_rate, min_seconds=0.3):
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert sample_rate == expected_rate
    assert wav.size / sample_rate > min_seconds
    assert np.abs(wav).max() <= 1.0 and np.sqrt(np.mean(wav**2)) > 0.01


def test_espeak_english(espeak):
    speaker = Speaker("espeak", "en-us", "en", variant="f3", pitch=60, rate=1.1)
    _assert_speech(*espeak.synthesize("Hello, what colour is the square?", speaker), 22050)


def test_espeak_mandarin(espeak):
    speaker = Speaker("espeak", "cmn", "zh", variant="m2")
    _assert_speech(*espeak.synthesize("正方形是什么颜色？", speaker), 22050)


def test_espeak_rate_and_pitch_change_the_audio(espeak):
    text = "The red circle is next to the blue square."
    slow, _ = espeak.synthesize(text, Speaker("espeak", "en-us", "en", rate=0.8))
    fast, _ = espeak.synthesize(text, Speaker("espeak", "en-us", "en", rate=1.2))
    assert slow.size > 1.3 * fast.size


def _espeak_samples(text: str) -> int:
    return get_tts_backend("espeak").synthesize(text, Speaker("espeak", "en-us", "en"))[0].size


def test_espeak_in_threads_and_forked_workers(espeak):
    """The process-wide engine is shared safely by threads and re-created in forked workers.

    espeak-ng varies durations by a few percent from call to call, so lengths are compared with
    a tolerance; audio mixed up between two calls would be about twice as long, or empty.
    """
    texts = ["one", "the red circle is next to the blue square and the green triangle"] * 3
    expected = [_espeak_samples(t) for t in texts]
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(_espeak_samples, texts))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        forked = list(pool.map(_espeak_samples, texts))
    for got in (threaded, forked):
        assert np.allclose(got, expected, rtol=0.1)


def test_espeak_reproducible_mode_ignores_history_and_the_clock():
    """espeak-ng seeds its random generator from the clock at initialisation: before the seed was
    fixed, the same utterance a second later came out different (and this test failed whenever
    a loaded machine let its three utterances straddle a second)."""
    backend = EspeakBackend(reproducible=True)
    speaker = Speaker("espeak", "en-us", "en", variant="f2")
    first, _ = backend.synthesize("What colour is the square?", speaker)
    backend.synthesize("Something else entirely, spoken in between.", speaker)
    time.sleep(1.1)
    again, _ = backend.synthesize("What colour is the square?", speaker)
    np.testing.assert_array_equal(first, again)


def test_piper_joe(piper):
    speaker = speaker_pool("en", 1, seed=0, backend=piper)[0]
    _assert_speech(*piper.synthesize("Hello there.", speaker), 22050)


def test_failing_sample_raises_synthesis_error(espeak, piper):
    with pytest.raises(SynthesisError, match="no voice") as info:
        espeak.synthesize("hello", Speaker("espeak", "xx-nonexistent", "en"))
    assert info.value.reason.startswith("espeak-ng has no voice")
    with pytest.raises(SynthesisError, match="no audio"):
        piper.synthesize("   ", Speaker("piper", "en_US-joe-medium", "en"))


def test_backend_exception_becomes_synthesis_error(piper, monkeypatch):
    voice = piper._load()

    def broken(*args, **kwargs):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr(voice, "synthesize", broken)
    with pytest.raises(SynthesisError, match="onnxruntime exploded"):
        piper.synthesize("Hello.", Speaker("piper", "en_US-joe-medium", "en"))


def test_wrong_speaker_is_a_value_error(espeak, piper):
    with pytest.raises(ValueError, match="belongs to backend"):
        piper.synthesize("hi", Speaker("espeak", "en-us", "en"))
    with pytest.raises(ValueError, match="no pitch"):
        piper.synthesize("hi", Speaker("piper", "en_US-joe-medium", "en", pitch=40))
    with pytest.raises(ValueError, match="variant"):
        espeak.synthesize("hi", Speaker("espeak", "en-us", "en", variant="no-such-variant"))
    with pytest.raises(ValueError, match="rate"):
        Speaker("espeak", "en-us", "en", rate=0.0)
    with pytest.raises(ValueError, match="language"):
        Speaker("espeak", "en-us", "fr")


def test_speaker_pool_is_deterministic_distinct_and_per_language(espeak):
    pool = speaker_pool("en", 50, seed=3, backend=espeak)
    assert pool == speaker_pool("en", 50, seed=3, backend=espeak)
    assert pool != speaker_pool("en", 50, seed=4, backend=espeak)
    assert len(set(pool)) == 50 and all(s.language == "en" for s in pool)
    zh = speaker_pool("zh", 20, seed=3, backend=espeak)
    assert {s.voice for s in zh} == {"cmn"} and all(s.language == "zh" for s in zh)
    assert espeak.voice_space("en").size >= 2000  # the paper's pool size fits


def test_sample_speakers_size_errors():
    space = VoiceSpace("espeak", "en", ("en-us",), pitches=(40, 60))
    assert {s.pitch for s in sample_speakers(space, 2, seed=0)} == {40, 60}
    with pytest.raises(ValueError, match="offers 2 distinct"):
        sample_speakers(space, 3, seed=0)


def test_speaker_sampler_matches_language_and_is_order_free(espeak):
    pools = {"en": speaker_pool("en", 10, 0, espeak), "zh": speaker_pool("zh", 10, 0, espeak)}
    sampler = SpeakerSampler(pools, seed=1)
    assert sampler.draw("What colour is the square?", "s1").language == "en"
    assert sampler.draw("正方形是什么颜色？", "s2").language == "zh"
    draws = [sampler.draw("hello there", f"s{i}") for i in range(30)]
    assert [SpeakerSampler(pools, seed=1).draw("hello there", f"s{i}") for i in reversed(range(30))][
        ::-1
    ] == draws
    assert len(set(draws)) > 3
    with pytest.raises(ValueError, match="no zh speaker pool"):
        SpeakerSampler({"en": pools["en"]}).draw("你好", "s3")
    with pytest.raises(ValueError, match="another language"):
        SpeakerSampler({"en": pools["zh"]})


def test_router_dispatches_by_speaker_backend(espeak):
    router = TTSRouter({"espeak": espeak})
    wav, rate = router.synthesize("hello", Speaker("espeak", "en-us", "en"))
    assert wav.size > 0 and rate == 22050
    with pytest.raises(ValueError, match="needs backend 'piper'"):
        router.synthesize("hello", Speaker("piper", "en_US-joe-medium", "en"))


def test_zero_shot_slots_explain_what_to_install(tmp_path):
    with pytest.raises(BackendUnavailableError, match="API server"):
        get_tts_backend("fish-speech")
    with pytest.raises(FileNotFoundError, match="cosyvoice2.yaml"):
        get_tts_backend(f"cosyvoice2:{tmp_path}")
    (tmp_path / "cosyvoice2.yaml").write_text("{}")
    with pytest.raises(BackendUnavailableError, match="FunAudioLLM/CosyVoice"):
        get_tts_backend(f"cosyvoice2:{tmp_path}")
    with pytest.raises(ValueError, match="unknown TTS backend"):
        get_tts_backend("festival")


def test_cosyvoice2_adapter_calls_the_documented_api(tmp_path, monkeypatch):
    """With a stand-in `cosyvoice` package the adapter makes the zero-shot call and returns audio."""
    import torch

    calls = []

    class FakeCosyVoice2:
        sample_rate = 24000

        def __init__(self, model_dir, **kwargs):
            calls.append(("init", model_dir))

        def inference_zero_shot(self, text, prompt_text, prompt_speech_16k, stream, speed):
            calls.append(("zero_shot", text, prompt_text, prompt_speech_16k.shape, speed))
            yield {"tts_speech": torch.full((1, 2400), 0.5)}
            yield {"tts_speech": torch.full((1, 2400), -0.5)}

    cli = types.ModuleType("cosyvoice.cli.cosyvoice")
    cli.CosyVoice2 = FakeCosyVoice2
    file_utils = types.ModuleType("cosyvoice.utils.file_utils")
    file_utils.load_wav = lambda path, rate: torch.zeros(1, rate)
    for name in ("cosyvoice", "cosyvoice.cli", "cosyvoice.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "cosyvoice.cli.cosyvoice", cli)
    monkeypatch.setitem(sys.modules, "cosyvoice.utils.file_utils", file_utils)
    (tmp_path / "cosyvoice2.yaml").write_text("{}")
    prompt = tmp_path / "prompt.wav"
    prompt.write_bytes(b"RIFF")

    from nexus_o.speech.tts.zero_shot import prompt_speakers

    backend = get_tts_backend(f"cosyvoice2:{tmp_path}")
    speaker = prompt_speakers([(prompt, "希望你以后做得比我还好。", "zh")])[0]
    wav, rate = backend.synthesize("你好", speaker)
    assert rate == 24000 and wav.shape == (4800,) and wav.dtype == np.float32
    assert calls[1] == ("zero_shot", "你好", "希望你以后做得比我还好。", (1, 16000), 1.0)
    with pytest.raises(FileNotFoundError):
        prompt_speakers([(tmp_path / "missing.wav", "x", "zh")])
