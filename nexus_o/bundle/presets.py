"""Named model presets: `tiny` (toy widths, random init, CPU) and `nexus-o-7b` (the paper's sizes).

A preset is a plain dict of sub-config overrides turned into a `NexusOConfig`; nothing here
allocates weights. `nexus-o-7b` gives the shapes of Qwen2.5-VL-7B + Whisper-large-v3 + the
paper's adapter and 6-layer speech decoder; users load real weights with `from_components`.
"""

from __future__ import annotations

import copy
from typing import Any

from nexus_o.models.configuration import WHISPER_LARGE_V3_ENCODER, NexusOConfig

QWEN2_5_VL_7B: dict[str, Any] = {
    "text_config": {
        "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
        "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6, "max_window_layers": 28, "bos_token_id": 151643, "eos_token_id": 151645,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    },
    "vision_config": {
        "depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
        "out_hidden_size": 3584, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
    },
    "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
}

PRESETS: dict[str, dict[str, Any]] = {
    "nexus-o-7b": {
        "vl_config": QWEN2_5_VL_7B,
        "audio_config": WHISPER_LARGE_V3_ENCODER,
        "adapter_config": {"stack_frames": 5, "input_size": 1280, "intermediate_size": 3584,
                           "output_size": 3584},
        "speech_decoder_config": {"num_layers": 6, "hidden_size": 1024, "num_heads": 16,
                                  "intermediate_size": 4096, "num_codebooks": 8, "codebook_size": 1024,
                                  "codec_entries": 1000, "llm_hidden_size": 3584,  # FireFly's codes
                                  "streaming": True, "lookahead": 3},
        "audio_token_id": 151665, "audio_start_token_id": 151666, "audio_end_token_id": 151667,
    },
    # Token ids follow `nexus_o.processing.tokenizer.build_tiny_tokenizer` (specials first).
    "tiny": {
        "vl_config": {
            "text_config": {
                "vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
                "rms_norm_eps": 1e-6, "max_window_layers": 2, "bos_token_id": 0, "eos_token_id": 2,
                "pad_token_id": 0,
                "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            },
            "vision_config": {
                "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                "window_size": 56, "fullatt_block_indexes": [1], "tokens_per_second": 2, "patch_size": 14,
                "spatial_merge_size": 2, "temporal_patch_size": 2,
            },
            "image_token_id": 5, "video_token_id": 6, "vision_start_token_id": 3, "vision_end_token_id": 4,
        },
        "audio_config": {"d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4,
                         "encoder_ffn_dim": 128, "decoder_layers": 1, "decoder_attention_heads": 4,
                         "decoder_ffn_dim": 128, "num_mel_bins": 80, "max_source_positions": 1500,
                         "vocab_size": 64, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
                         "decoder_start_token_id": 3},
        "adapter_config": {"stack_frames": 5, "input_size": 64, "intermediate_size": 64, "output_size": 64},
        "audio_token_id": 8, "audio_start_token_id": 7, "audio_end_token_id": 9,
    },
}


# The speech decoder `load_model("tiny")` adds (sized to the codec by `speech_decoder_for`).
TINY_SPEECH_DECODER: dict[str, Any] = {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64,
                                       "streaming": True, "lookahead": 3}


def preset_config(name: str, **overrides: Any) -> NexusOConfig:
    """The `NexusOConfig` of preset `name`, with top-level keys overridden (strictly checked)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    values = copy.deepcopy(PRESETS[name])
    values.update(overrides)
    return NexusOConfig(**values)
