import pytest
import torch

from nexus_o.models.configuration import NexusOConfig
from nexus_o.bundle.presets import preset_config


def test_unknown_keys_are_errors_at_every_level():
    with pytest.raises(ValueError, match="bogus"):
        preset_config("tiny", bogus=1)
    with pytest.raises(ValueError, match=r"stack_frame.*adapter_config"):
        NexusOConfig(adapter_config={"stack_frame": 4})
    with pytest.raises(ValueError, match=r"hiden_size.*vl_config.text_config"):
        NexusOConfig(vl_config={"text_config": {"hiden_size": 8}})
    with pytest.raises(ValueError, match=r"d_modl.*audio_config"):
        NexusOConfig(audio_config={"d_modl": 8})


def test_width_mismatch_names_both_sides():
    with pytest.raises(ValueError, match=r"adapter_config.input_size=32 .*audio_config.d_model=64"):
        preset_config("tiny", adapter_config={"input_size": 32, "intermediate_size": 64, "output_size": 64})


def test_config_round_trip(tmp_path):
    cfg = preset_config("tiny")
    cfg.save_pretrained(tmp_path)
    again = NexusOConfig.from_pretrained(tmp_path)
    assert again.to_dict() == cfg.to_dict()


def test_7b_preset_shapes_without_allocating():
    from nexus_o.models.modeling import NexusOForConditionalGeneration

    cfg = preset_config("nexus-o-7b", speech_decoder_config=None)
    assert cfg.vl_config.text_config.hidden_size == 3584
    assert cfg.audio_config.d_model == 1280 and cfg.audio_config.num_mel_bins == 128
    assert cfg.adapter_config.stack_frames == 5
    with torch.device("meta"):
        model = NexusOForConditionalGeneration(cfg)
    adapter_in = model.audio_adapter.linear_1.in_features
    assert adapter_in == 5 * 1280 and model.audio_adapter.linear_2.out_features == 3584
    total = sum(p.numel() for p in model.parameters())
    assert 8.5e9 < total < 9.5e9  # Qwen2.5-VL-7B (8.3B) + Whisper-large-v3 encoder (0.64B) + adapter
    assert all(p.device.type == "meta" for p in model.parameters())
