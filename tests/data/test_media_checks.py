"""Media checks and loading on small files the tests write."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from nexus_o.data.media_checks import (MediaError, check_audio, check_image, check_sample_media, check_video, load_audio,
                                load_codes, load_image, load_video, probe_audio)
from nexus_o.data.schema import Sample
from tests.data.media_files import (write_corrupt, write_empty_wav, write_m4a, write_mp4, write_png, write_wav)


def test_valid_wav_checks_and_probes(tmp_path):
    path = str(write_wav(tmp_path / "a.wav", seconds=0.5, rate=8000))
    assert check_audio(path).seconds == pytest.approx(0.5)
    assert probe_audio(path).frames == 4000


def test_zero_length_and_corrupt_audio_are_flagged(tmp_path):
    with pytest.raises(MediaError, match="0 samples"):
        check_audio(str(write_empty_wav(tmp_path / "e.wav")))
    with pytest.raises(MediaError, match="does not decode.*soundfile.*PyAV"):
        check_audio(str(write_corrupt(tmp_path / "c.wav")))
    with pytest.raises(MediaError, match="file not found"):
        check_audio(str(tmp_path / "missing.wav"))


def test_non_finite_audio_is_flagged(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "nan.wav", np.array([0.0, np.nan, 0.1], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(MediaError, match="NaN"):
        check_audio(str(tmp_path / "nan.wav"))


def test_load_audio_mixes_to_mono_and_resamples(tmp_path):
    path = str(write_wav(tmp_path / "s.wav", seconds=1.0, rate=22050, channels=2))
    wav, rate = load_audio(path, sampling_rate=16000)
    assert (rate, wav.dtype, wav.ndim) == (16000, np.float32, 1)
    assert abs(wav.shape[0] - 16000) <= 1
    stereo, native = load_audio(path, mono=False)
    assert stereo.shape == (2, 22050) and native == 22050


def test_pyav_fallback_decodes_m4a(tmp_path):
    path = str(write_m4a(tmp_path / "a.m4a", seconds=0.5))
    wav, rate = load_audio(path, sampling_rate=16000)
    assert rate == 16000
    assert 0.45 < wav.shape[0] / 16000 < 0.65  # AAC adds a little encoder padding
    assert np.abs(wav).max() > 0.05


def test_data_uri_audio(tmp_path):
    payload = base64.b64encode(write_wav(tmp_path / "a.wav").read_bytes()).decode()
    wav, rate = load_audio(f"data:audio/wav;base64,{payload}")
    assert (wav.shape[0], rate) == (8000, 16000)


def test_images(tmp_path):
    path = str(write_png(tmp_path / "i.png", size=(12, 8)))
    assert check_image(path) == (12, 8)
    assert load_image(path).mode == "RGB"
    truncated = tmp_path / "t.png"
    truncated.write_bytes((tmp_path / "i.png").read_bytes()[:40])
    with pytest.raises(MediaError, match="image does not decode"):
        check_image(str(truncated))


def test_video_frames_are_sampled_at_fps(tmp_path):
    path = str(write_mp4(tmp_path / "v.mp4", frames=8, fps=4))
    assert check_video(path) == (32, 32)
    frames, times = load_video(path, fps=2.0)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    np.testing.assert_allclose(times, [0.0, 0.5, 1.0, 1.5])
    few, _ = load_video(path, fps=4.0, max_frames=2)
    assert few.shape[0] == 2  # sparser sampling, not a cut
    with pytest.raises(MediaError, match="video does not decode"):
        check_video(str(write_corrupt(tmp_path / "bad.mp4")))


def test_codes_files(tmp_path):
    np.save(tmp_path / "c.npy", np.arange(12, dtype=np.int16).reshape(3, 4))
    codes = load_codes(str(tmp_path / "c.npy"))
    assert codes.dtype == np.int64 and codes.shape == (3, 4)
    np.save(tmp_path / "f.npy", np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(MediaError, match="integer array"):
        load_codes(str(tmp_path / "f.npy"))
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(MediaError, match="does not load"):  # never unpickled
        load_codes(str(tmp_path / "o.npy"))


def test_check_sample_media_names_the_field(tmp_path):
    write_wav(tmp_path / "a.wav", seconds=0.25)
    sample = Sample.model_validate({
        "messages": [{"role": "user", "content": "<audio><audio>"}, {"role": "assistant", "content": "x"}],
        "audios": [str(tmp_path / "a.wav"), str(write_empty_wav(tmp_path / "e.wav"))]})
    with pytest.raises(MediaError, match=r"audios\[1\]: audio has 0 samples"):
        check_sample_media(sample, "exists")
    sample.audios = [str(tmp_path / "a.wav")] * 2
    assert check_sample_media(sample, "decode").audio_seconds == pytest.approx(0.5)
    assert check_sample_media(sample, "none").audio_seconds == 0.0
