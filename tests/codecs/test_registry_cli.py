"""get_codec / load_codec, and the `nexus-o codec fit` and `codec roundtrip` commands end to end."""

import json

import pytest
import soundfile as sf
from typer.testing import CliRunner

from nexus_o.cli import app
from nexus_o.codecs import available_codecs, get_codec, load_codec, resolve_codec
from nexus_o.codecs.audio_io import collect_audio_paths, write_audio
from nexus_o.codecs.builtin import BuiltinCodec
from nexus_o.codecs.firefly import FireflyCodec
from tests.codecs.conftest import TINY_FIREFLY, speechlike


def test_get_codec_by_name_and_errors(tmp_path):
    assert available_codecs() == ["builtin", "firefly"]
    assert isinstance(get_codec("firefly", random_init=True, seed=1), FireflyCodec)
    with pytest.raises(ValueError, match=r"unknown codec 'encodec'; available: \['builtin', 'firefly'\]"):
        get_codec("encodec")
    with pytest.raises(TypeError, match=r"unknown arguments \['checkpoint_path'\]"):
        get_codec("firefly", checkpoint_path="x.pth")
    with pytest.raises(ValueError, match="needs checkpoint=PATH"):
        get_codec("firefly")
    with pytest.raises(FileNotFoundError, match="codec_config.json"):
        get_codec("builtin", path=tmp_path)
    with pytest.raises(ValueError, match="neither a codec name"):
        resolve_codec(str(tmp_path / "nope"))


def test_default_builtin_codec_ships_with_the_package():
    codec = get_codec("builtin")
    assert isinstance(codec, BuiltinCodec)
    assert (codec.num_codebooks, codec.codebook_size, codec.sample_rate) == (8, 512, 22050)


def test_load_codec_dispatches_on_the_saved_config(builtin_codec, tmp_path):
    builtin_codec.save_pretrained(tmp_path / "b")
    FireflyCodec.random_init(TINY_FIREFLY).save_pretrained(tmp_path / "f")
    assert isinstance(load_codec(tmp_path / "b"), BuiltinCodec)
    firefly = load_codec(tmp_path / "f")
    assert isinstance(firefly, FireflyCodec) and firefly.config == TINY_FIREFLY
    assert isinstance(resolve_codec(str(tmp_path / "b")), BuiltinCodec)


def test_collect_audio_paths_from_folder_and_manifest(tmp_path):
    write_audio(tmp_path / "clips" / "a.wav", speechlike(0.1), 22050)
    write_audio(tmp_path / "clips" / "sub" / "b.wav", speechlike(0.1), 22050)
    assert [p.name for p in collect_audio_paths(tmp_path / "clips")] == ["a.wav", "b.wav"]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text(json.dumps({"audios": ["clips/a.wav"], "audio": "clips/sub/b.wav"}) + "\n\n")
    assert [p.name for p in collect_audio_paths(manifest)] == ["a.wav", "b.wav"]
    manifest.write_text(json.dumps({"audios": ["clips/a.wav"]}) + "\n" + json.dumps({"audios": ["gone.wav"]}) + "\n")
    with pytest.raises(FileNotFoundError, match=r"train.jsonl:2: audio file not found"):
        collect_audio_paths(manifest)
    manifest.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"train.jsonl:1: not valid JSON"):
        collect_audio_paths(manifest)


def test_cli_fit_then_roundtrip(tmp_path):
    for seed in range(2):
        write_audio(tmp_path / "speech" / f"{seed}.wav", speechlike(1.0, rate=16000, seed=seed), 16000)
    runner = CliRunner()
    fit = runner.invoke(
        app,
        ["codec", "fit", "--audio", str(tmp_path / "speech"), "--out", str(tmp_path / "codec"),
         "--codebooks", "2", "--size", "8", "--iters", "2"],
    )
    assert fit.exit_code == 0, fit.output
    assert "fitted 2 x 8 codebooks on 2 files" in fit.output
    assert (tmp_path / "codec" / "codebooks.safetensors").is_file()

    source = tmp_path / "in.wav"
    write_audio(source, speechlike(0.25, rate=16000, seed=7), 16000)
    out = tmp_path / "out.wav"
    trip = runner.invoke(app, ["codec", "roundtrip", str(source), str(out), "--codec", str(tmp_path / "codec")])
    assert trip.exit_code == 0, trip.output
    assert "22 frames x 2 codebooks at 86.13 frames/s" in trip.output  # 0.25 s -> 5512 samples at 22.05 kHz
    samples, rate = sf.read(out)
    assert rate == 22050 and samples.shape == (22 * 256,)

    missing = runner.invoke(app, ["codec", "fit", "--audio", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "audio source not found" in missing.output
