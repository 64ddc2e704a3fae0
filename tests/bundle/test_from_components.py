"""`from_components` from tiny Qwen2.5-VL and Whisper checkpoints written by the test itself."""

import torch
from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil,
                          WhisperConfig, WhisperForConditionalGeneration)

from nexus_o.bundle.from_components import from_components
from nexus_o.bundle.presets import PRESETS
from nexus_o.processing.tokenizer import AUDIO_TOKENS, build_tiny_tokenizer
from tests.conftest import tone


def _write_checkpoints(root):
    """A tiny Qwen2.5-VL folder whose tokenizer lacks audio tokens, and a tiny Whisper folder."""
    tok = build_tiny_tokenizer(with_audio=False)
    assert not set(AUDIO_TOKENS) & set(tok.get_added_vocab())
    vl_values = dict(PRESETS["tiny"]["vl_config"])
    vl_values["text_config"] = dict(vl_values["text_config"], vocab_size=1000)  # too small: forces a resize
    torch.manual_seed(0)
    vl = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**vl_values))
    vl.save_pretrained(root / "vl")
    tok.save_pretrained(root / "vl")
    Qwen2VLImageProcessorPil(size={"shortest_edge": 3136, "longest_edge": 28 * 28 * 16}).save_pretrained(root / "vl")
    wcfg = WhisperConfig(d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64,
                         decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64, num_mel_bins=80,
                         vocab_size=64, max_source_positions=1500, max_target_positions=32, pad_token_id=0,
                         bos_token_id=1, eos_token_id=2, decoder_start_token_id=3)
    whisper = WhisperForConditionalGeneration(wcfg)
    whisper.save_pretrained(root / "whisper")
    return vl, whisper, tok


def test_from_components_builds_and_round_trips(tmp_path):
    vl, whisper, tok = _write_checkpoints(tmp_path)
    omni = from_components(vl=tmp_path / "vl", audio_encoder=tmp_path / "whisper")
    model, processor = omni.model, omni.processor
    assert omni.codec is None
    # audio tokens added, embeddings resized to hold them
    ids = processor.tokenizer.convert_tokens_to_ids(AUDIO_TOKENS)
    assert ids == [model.config.audio_start_token_id, model.config.audio_token_id, model.config.audio_end_token_id]
    assert model.get_input_embeddings().num_embeddings >= len(processor.tokenizer) > 1000
    # encoder weights are Whisper's, adapter widths follow the parts
    assert torch.equal(model.audio_encoder.conv1.weight, whisper.model.encoder.conv1.weight)
    assert model.audio_adapter.linear_1.in_features == 5 * 32
    assert model.audio_adapter.linear_2.out_features == 64
    assert not any(p.device.type == "meta" for p in model.parameters())
    assert processor.image_processor.size["longest_edge"] == 28 * 28 * 16

    batch = processor.apply_chat_template({"messages": [{"role": "user", "content": "<audio>hi"}],
                                           "audios": [tone(1.0)]})
    with torch.no_grad():
        logits = model(**batch).logits
    model.save_pretrained(tmp_path / "nexus")
    processor.save_pretrained(tmp_path / "nexus")
    from nexus_o.bundle.loading import load_model

    loaded = load_model(tmp_path / "nexus")
    again, proc2 = loaded.model, loaded.processor
    with torch.no_grad():
        assert torch.equal(again.eval()(**proc2.apply_chat_template(
            {"messages": [{"role": "user", "content": "<audio>hi"}], "audios": [tone(1.0)]})).logits, logits)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="no Qwen2.5-VL checkpoint"):
        from_components(vl=tmp_path / "nope", audio_encoder=tmp_path)
