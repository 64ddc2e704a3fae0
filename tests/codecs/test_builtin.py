import json

import pytest
import torch

from nexus_o.codecs import hifigan
from nexus_o.codecs.audio_io import write_audio
from nexus_o.codecs.builtin import BuiltinCodec, fit_builtin_codec
from tests.codecs.conftest import as_wav, speechlike


def test_save_load_round_trip_gives_identical_codes_and_audio(builtin_codec, tmp_path):
    builtin_codec.save_pretrained(tmp_path / "codec")
    loaded = BuiltinCodec.from_pretrained(tmp_path / "codec")
    assert torch.equal(loaded.rvq.codebooks, builtin_codec.rvq.codebooks)
    wav = as_wav(speechlike(0.2, seed=9))
    codes = builtin_codec.encode(wav)
    assert torch.equal(loaded.encode(wav), codes)
    assert torch.equal(loaded.decode(codes), builtin_codec.decode(codes))


def test_from_pretrained_refuses_inconsistent_folders(builtin_codec, tmp_path):
    folder = tmp_path / "codec"
    builtin_codec.save_pretrained(folder)
    config_path = folder / "codec_config.json"
    config = json.loads(config_path.read_text())

    config_path.write_text(json.dumps({**config, "num_codebook": 4}))
    with pytest.raises(ValueError, match=r"unknown keys \['num_codebook'\]"):
        BuiltinCodec.from_pretrained(folder)

    config_path.write_text(json.dumps({**config, "mel": {**config["mel"], "hop_length": 200}}))
    with pytest.raises(ValueError, match="fitted on mel"):
        BuiltinCodec.from_pretrained(folder)

    config_path.write_text(json.dumps({**config, "codebook_size": 32}))
    with pytest.raises(ValueError, match=r"shape \(4, 16, 80\), config says \(4, 32, 80\)"):
        BuiltinCodec.from_pretrained(folder)

    config_path.write_text(json.dumps({**config, "codec": "firefly"}))
    with pytest.raises(ValueError, match="holds a 'firefly' codec"):
        BuiltinCodec.from_pretrained(folder)

    with pytest.raises(FileNotFoundError, match="codec_config.json"):
        BuiltinCodec.from_pretrained(tmp_path / "nowhere")


def test_fit_accepts_paths_and_arrays_at_other_rates(tmp_path):
    path = tmp_path / "a.wav"
    write_audio(path, speechlike(0.6, rate=16000, seed=1), 16000)
    from_path = fit_builtin_codec([path], 2, 8, iters=2, seed=3, progress=False)
    from_array = fit_builtin_codec(
        [torch.from_numpy(speechlike(0.6, rate=16000, seed=1))], 2, 8, iters=2, seed=3, sample_rate=16000,
        progress=False,
    )
    for codec in (from_path, from_array):
        assert (codec.num_codebooks, codec.codebook_size) == (2, 8)
        assert torch.isfinite(codec.rvq.codebooks).all()
    # Same audio either way (up to 16-bit rounding in the file): the loudest entries agree.
    loudest = float(from_array.rvq.codebooks[0].mean(1).max())
    assert float(from_path.rvq.codebooks[0].mean(1).max()) == pytest.approx(loudest, abs=0.1)
    with pytest.raises(ValueError, match="1-D"):
        fit_builtin_codec([torch.zeros(2, 100)], 1, 2, progress=False)
    with pytest.raises(ValueError, match="at least one"):
        fit_builtin_codec([], 1, 2, progress=False)


def test_context_frames_bound_the_vocoder_receptive_field():
    """Changing mel frame m changes no audio farther than context_frames() frames away."""
    vocoder = hifigan.load_generator()
    context = hifigan.context_frames()
    assert context == 15
    torch.manual_seed(0)
    mel = torch.randn(1, 80, 48) - 5
    moved = mel.clone()
    moved[..., 24] += 3.0
    with torch.inference_mode():
        diff = (vocoder(mel) - vocoder(moved)).abs()[0, 0]
    hop = 256
    assert diff[: (24 - context) * hop].max() == 0 and diff[(25 + context) * hop :].max() == 0
    assert diff[(24 - context + 2) * hop : (25 + context - 2) * hop].max() > 0  # and the bound is tight-ish
