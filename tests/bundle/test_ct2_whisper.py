"""CTranslate2 Whisper reader and converter: exact round trips through ctranslate2's own converter,
parity with ctranslate2's encoder and decoder, the packaged Whisper base, and clear file errors."""

from __future__ import annotations

import shutil

import ctranslate2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nexus_o.bundle.ct2_reader import CT2FormatError, read_ct2_model
from nexus_o.bundle.ct2_whisper import (
    convert_ct2_whisper,
    converted_whisper_base,
    ct2_source,
    ct2_whisper_state_dict,
)

SOT, NO_TIMESTAMPS, EOT = 50257, 50362, 50256  # tiny.en's tokenizer, which the tiny test model uses


@pytest.fixture(scope="module")
def hf_tiny(tmp_path_factory):
    """(folder, model): a seeded 2+2-layer, 16-wide Whisper with random biases, saved with tiny.en's tokenizer."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizer

    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=51864, d_model=16, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=32,
                           decoder_ffn_dim=24, max_target_positions=40, num_mel_bins=80)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # non-zero biases and norms, so that every split and offset shows
        for name, p in model.named_parameters():
            if name.endswith("bias") and "k_proj" not in name:
                p.normal_(0, 0.1)
            elif "layer_norm.weight" in name and "layers.1" in name:
                p.uniform_(0.5, 1.5)
    folder = tmp_path_factory.mktemp("hf_tiny")
    model.save_pretrained(folder)
    WhisperTokenizer(tokenizer_file=str(ct2_source("whisper-tiny.en") / "tokenizer.json")).save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def ct2_tiny(hf_tiny, tmp_path_factory):
    """quantization -> CT2 folder of `hf_tiny`, made by ctranslate2's own TransformersConverter."""
    made = {}

    def make(quantization: str):
        if quantization not in made:
            out = tmp_path_factory.mktemp("ct2") / quantization
            converter = ctranslate2.converters.TransformersConverter(str(hf_tiny[0]), copy_files=["tokenizer.json"])
            converter.convert(str(out), quantization=quantization)
            made[quantization] = out
        return made[quantization]

    return make


def _features(seconds: float = 2.0) -> np.ndarray:
    """Log-mel [1, 80, 3000] of a rising chirp with a little noise (padded to Whisper's 30 s)."""
    from transformers import WhisperFeatureExtractor

    t = np.arange(int(seconds * 16000)) / 16000
    rng = np.random.default_rng(0)
    wav = 0.3 * np.sin(2 * np.pi * (150 + 400 * t) * t) + 0.01 * rng.standard_normal(t.size)
    return WhisperFeatureExtractor(feature_size=80)(wav.astype(np.float32), sampling_rate=16000,
                                                    return_tensors="np").input_features


def test_float32_round_trip_is_exact(hf_tiny, ct2_tiny):
    ct2 = read_ct2_model(ct2_tiny("float32"))
    assert (ct2.binary_version, ct2.spec, ct2.revision) == (6, "WhisperSpec", 3)
    assert ct2.aliases["decoder/projection/weight"] == "decoder/embeddings/weight"
    assert (ct2.scalar("encoder/num_heads"), ct2.scalar("decoder/num_heads")) == (2, 4)
    state = ct2_whisper_state_dict(ct2, encoder_only=False)
    reference = hf_tiny[1].state_dict()
    assert state.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize("quantization", ["int8", "int16", "float16", "bfloat16"])
def test_quantised_round_trip_within_rounding(hf_tiny, ct2_tiny, quantization):
    ct2 = read_ct2_model(ct2_tiny(quantization))
    stored = {v.dtype for v in ct2.variables.values()}
    assert {"int8": "int8", "int16": "int16", "float16": "float16", "bfloat16": "bfloat16"}[quantization] in stored
    state = ct2_whisper_state_dict(ct2, encoder_only=False)
    widest = max(v.abs().max().item() for v in hf_tiny[1].state_dict().values())
    for key, value in hf_tiny[1].state_dict().items():
        if quantization == "int8" and value.dim() >= 2:  # half a step of a per-row 127-level grid
            rows = value.reshape(value.shape[0], -1)
            bound = (rows.abs().amax(dim=1, keepdim=True) / 254 * 1.001).expand_as(rows).reshape(value.shape)
        elif quantization == "int16" and value.dim() >= 2:  # one scale per stored (maybe fused) tensor
            bound = torch.full_like(value, widest / 2**11 * 1.001)
        else:  # float16 / bfloat16 rounding: 2**-11 / 2**-8 relative
            rel = {"float16": 2**-11, "bfloat16": 2**-8}.get(quantization, 2**-11)
            bound = value.abs() * rel * 1.001 + 1e-7
        assert ((state[key] - value).abs() <= bound).all(), key


def test_full_conversion_gives_the_same_model(hf_tiny, ct2_tiny, tmp_path):
    from transformers import WhisperForConditionalGeneration, WhisperTokenizer

    out = convert_ct2_whisper(ct2_tiny("float32"), tmp_path / "hf", encoder_only=False)
    converted = WhisperForConditionalGeneration.from_pretrained(out).eval()
    assert converted.config.decoder_start_token_id == SOT and converted.config.eos_token_id == EOT
    assert converted.generation_config.no_timestamps_token_id == NO_TIMESTAMPS
    assert not converted.generation_config.is_multilingual  # 51864 tokens: an English-only vocabulary
    assert WhisperTokenizer.from_pretrained(out).convert_tokens_to_ids("<|startoftranscript|>") == SOT
    features = torch.from_numpy(_features(0.5))
    decoder_ids = torch.tensor([[SOT, NO_TIMESTAMPS, 400, 500]])
    with torch.no_grad():
        want = hf_tiny[1](features, decoder_input_ids=decoder_ids).logits
        got = converted(features, decoder_input_ids=decoder_ids).logits
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_greedy_decoding_matches_ctranslate2(ct2_tiny, tmp_path):
    from transformers import WhisperForConditionalGeneration

    folder = ct2_tiny("float32")
    model = WhisperForConditionalGeneration.from_pretrained(
        convert_ct2_whisper(folder, tmp_path / "hf", encoder_only=False)).eval()
    features = _features(1.0)
    runtime = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    want = runtime.generate(ctranslate2.StorageView.from_array(features), [[SOT, NO_TIMESTAMPS]], beam_size=1,
                            suppress_blank=False, suppress_tokens=[], max_length=12)[0].sequences_ids[0]
    ids = torch.tensor([[SOT, NO_TIMESTAMPS]])
    with torch.no_grad():
        memory = model.model.encoder(torch.from_numpy(features)).last_hidden_state
        for _ in range(len(want)):
            logits = model(encoder_outputs=(memory,), decoder_input_ids=ids).logits[0, -1]
            ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)
    assert len(want) > 0 and ids[0, 2:].tolist() == list(want)


def test_encoder_only_folder_loads_with_load_whisper_encoder(hf_tiny, ct2_tiny, tmp_path):
    from nexus_o.bundle.from_components import load_whisper_encoder

    encoder = load_whisper_encoder(convert_ct2_whisper(ct2_tiny("int8"), tmp_path / "enc")).eval()
    features = torch.from_numpy(_features(0.5))
    with torch.no_grad():
        got = encoder(features).last_hidden_state
        want = hf_tiny[1].model.encoder(features).last_hidden_state
    cosine = torch.nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0)
    assert cosine > 0.999  # int8 weights: close, not equal


def test_split_parts_read_like_the_whole_file(ct2_tiny, tmp_path):
    data = (ct2_tiny("float16") / "model.bin").read_bytes()
    cut = len(data) // 2 + 3  # inside some variable's data
    (tmp_path / "a").write_bytes(data[:cut])
    (tmp_path / "b").write_bytes(data[cut:])
    whole, parts = read_ct2_model(ct2_tiny("float16")), read_ct2_model([tmp_path / "a", tmp_path / "b"])
    assert whole.variables.keys() == parts.variables.keys() and whole.aliases == parts.aliases
    for name, var in whole.variables.items():
        assert np.array_equal(var.data, parts.variables[name].data), name


def test_packaged_tiny_en_encoder_matches_ctranslate2(tmp_path):
    from nexus_o.bundle.from_components import load_whisper_encoder

    source = ct2_source("whisper-tiny.en")
    encoder = load_whisper_encoder(convert_ct2_whisper(source, tmp_path / "tiny-en")).eval()
    features = _features(2.0)
    runtime = ctranslate2.models.Whisper(str(source), device="cpu", compute_type="float32")
    want = np.array(runtime.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))
    with torch.no_grad():
        got = encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    assert got.shape == want.shape == (1, 1500, 384)
    assert np.abs(got - want).max() < 1e-3


def test_whisper_base_is_converted_once_and_reused(tmp_path):
    from nexus_o.bundle.from_components import load_whisper_encoder

    folder = converted_whisper_base(cache_dir=tmp_path)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert converted_whisper_base(cache_dir=tmp_path) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    encoder = load_whisper_encoder(folder)
    c = encoder.config
    assert (c.d_model, c.encoder_layers, c.encoder_attention_heads, c.num_mel_bins, c.max_source_positions) == (
        512, 6, 8, 80, 1500)
    assert (c.vocab_size, c.decoder_start_token_id) == (51865, 50258)  # multilingual vocabulary
    assert encoder.layers[0].self_attn.k_proj.bias is None
    assert encoder.conv2.weight.shape == (512, 512, 3)


def test_missing_model_bin_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "model.bin")):
        read_ct2_model(tmp_path)


@pytest.mark.parametrize("keep", [3, 40, 5000])
def test_truncated_file_names_file_and_offset(ct2_tiny, tmp_path, keep):
    (tmp_path / "model.bin").write_bytes((ct2_tiny("float32") / "model.bin").read_bytes()[:keep])
    with pytest.raises(CT2FormatError, match=r"model\.bin is truncated: reading .* at offset \d+, but the file "
                                             rf"ends at {keep}"):
        read_ct2_model(tmp_path)


def test_corrupt_headers_are_named(ct2_tiny, tmp_path):
    data = (ct2_tiny("float32") / "model.bin").read_bytes()
    (tmp_path / "model.bin").write_bytes(b"\x63\x00\x00\x00" + data[4:])
    with pytest.raises(CT2FormatError, match="binary version 99"):
        read_ct2_model(tmp_path)
    (tmp_path / "model.bin").write_bytes(data + b"\x00\x00")
    with pytest.raises(CT2FormatError, match="2 unexpected bytes after the last record"):
        read_ct2_model(tmp_path)
    (tmp_path / "model.bin").write_bytes(data.replace(b"WhisperSpec", b"BertModSpec", 1))
    with pytest.raises(ValueError, match="BertModSpec model, not a CTranslate2 WhisperSpec"):
        ct2_whisper_state_dict(read_ct2_model(tmp_path))


def test_cli_convert_whisper(ct2_tiny, tmp_path):
    from nexus_o.cli import app

    result = CliRunner().invoke(app, ["convert-whisper", str(ct2_tiny("float32")), str(tmp_path / "out"), "--full"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model.safetensors").is_file() and (tmp_path / "out" / "tokenizer.json").is_file()
    broken = tmp_path / "broken"
    shutil.copytree(ct2_tiny("float32"), broken)
    (broken / "model.bin").write_bytes((broken / "model.bin").read_bytes()[:100])
    result = CliRunner().invoke(app, ["convert-whisper", str(broken), str(tmp_path / "out2")])
    assert result.exit_code == 2 and "truncated" in result.output and not (tmp_path / "out2").exists()
