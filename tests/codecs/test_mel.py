import numpy as np
import pytest
import torch

from nexus_o.codecs import hifigan
from nexus_o.codecs.mel import LogMelSpectrogram, MelConfig, hz_to_mel, mel_to_hz, slaney_mel_filterbank
from tests.codecs.conftest import speechlike


def test_filterbank_matches_librosa_golden_values():
    # Reference values from librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0, fmax=8000).
    bank = slaney_mel_filterbank(22050, 1024, 80, 0.0, 8000.0)
    assert bank.shape == (80, 513) and bank.dtype == np.float32
    assert np.flatnonzero(bank[10]).tolist() == [18, 19, 20]
    np.testing.assert_allclose(bank[10, 18:21], [0.01096482, 0.02649254, 0.01168657], rtol=1e-5)
    row_sums = [0.04530278, 0.04914393, 0.04654524, 0.04641479]
    np.testing.assert_allclose(bank.sum(1)[[0, 10, 40, 79]], row_sums, rtol=1e-5)
    assert bank[:, 372:].max() == 0.0  # nothing above fmax = 8 kHz (bin 372 is 8010 Hz)


def test_mel_scale_round_trip():
    hz = np.array([0.0, 300.0, 999.0, 1000.0, 4000.0, 22050.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-10, atol=1e-9)
    assert hz_to_mel(np.array([1000.0]))[0] == pytest.approx(15.0)


def numpy_reference_mel(samples: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """The package's recipe written independently with numpy: centred reflect-padded frames,
    periodic Hann window, |rfft|, filterbank, log(clamp)."""
    padded = np.pad(samples, cfg.n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[:: cfg.hop_length]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.win_length) / cfg.win_length)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=-1)).T
    bank = slaney_mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    return np.log(np.maximum(bank @ magnitude, cfg.log_floor))


def test_hifigan_front_end_matches_independent_numpy_recipe():
    cfg = hifigan.mel_config()
    assert (cfg.sample_rate, cfg.n_fft, cfg.win_length, cfg.hop_length, cfg.n_mels) == (22050, 1024, 1024, 256, 80)
    assert (cfg.fmin, cfg.fmax, cfg.log_floor, cfg.padding) == (0.0, 8000.0, 1e-7, "center")
    samples = speechlike(0.3)
    ours = LogMelSpectrogram(cfg)(torch.from_numpy(samples)[None, None])[0].numpy()
    reference = numpy_reference_mel(samples.astype(np.float64), cfg)
    assert ours.shape == reference.shape == (80, cfg.num_frames(samples.size))
    audible = reference > -9.0  # float32 rounding dominates bands 60+ dB below the peak
    assert audible.mean() > 0.5
    np.testing.assert_allclose(ours[audible], reference[audible], atol=2e-3)
    np.testing.assert_allclose(ours, reference, atol=0.1)


@pytest.mark.parametrize("padding", ["center", "fish"])
def test_num_frames_matches_output(padding):
    cfg = MelConfig(sample_rate=16000, n_fft=512, win_length=512, hop_length=128, n_mels=20, padding=padding)
    front = LogMelSpectrogram(cfg)
    for length in (600, 1000, 1280):
        assert front(torch.zeros(2, 1, length)).shape == (2, 20, cfg.num_frames(length))


def test_config_rejects_unknown_keys_and_bad_values():
    good = hifigan.mel_config().to_dict()
    assert MelConfig.from_dict(good) == hifigan.mel_config()
    with pytest.raises(ValueError, match="unknown mel config keys"):
        MelConfig.from_dict({**good, "hop": 256})
    with pytest.raises(ValueError, match="padding"):
        MelConfig(sample_rate=16000, n_fft=512, win_length=512, hop_length=128, n_mels=20, padding="same")
    with pytest.raises(ValueError, match="mono"):
        LogMelSpectrogram(hifigan.mel_config())(torch.zeros(1, 2, 1000))
