"""Build or load a model bundle: a preset name or a saved checkpoint folder.

`build_preset` gives a freshly initialised (model, processor); `load_model` gives an `OmniModel`
(model + processor + codec) ready to `chat`, from a preset name or a folder that
`OmniModel.save_pretrained` (or training) wrote.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoProcessor, Qwen2VLImageProcessorPil, WhisperFeatureExtractor

from nexus_o.bundle.omni import CODEC_SUBDIR, OmniModel
from nexus_o.bundle.presets import PRESETS, TINY_SPEECH_DECODER, preset_config
from nexus_o.codecs.builtin import default_codec_dir
from nexus_o.codecs.registry import load_codec
from nexus_o.models.configuration import NexusOConfig
from nexus_o.models.modeling import NexusOForConditionalGeneration
from nexus_o.processing.processor import NexusOProcessor
from nexus_o.processing.tokenizer import build_tiny_tokenizer

__all__ = ["CODEC_SUBDIR", "TINY_IMAGE_PIXELS", "build_preset", "build_processor", "default_codec", "load_model",
           "register_auto_classes",
           "speech_decoder_for"]

# The tiny preset keeps images small so that CPU runs stay fast: at most 64 merged tokens.
TINY_IMAGE_PIXELS = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64}


def register_auto_classes() -> None:
    """Make `AutoConfig` / `AutoModel` / `AutoProcessor` know nexus-o folders (idempotent).

    Called by our loaders rather than at import, so importing nexus_o changes nothing global.
    """
    try:
        AutoConfig.register("nexus_o", NexusOConfig)
        AutoModel.register(NexusOConfig, NexusOForConditionalGeneration)
        AutoProcessor.register(NexusOConfig, NexusOProcessor)
    except ValueError:  # already registered
        pass


def build_processor(config: NexusOConfig, tokenizer, image_pixels: dict | None = None) -> NexusOProcessor:
    """A `NexusOProcessor` whose audio/vision settings match `config`."""
    vision = config.vl_config.vision_config
    kwargs = {"size": image_pixels} if image_pixels else {}
    image_processor = Qwen2VLImageProcessorPil(patch_size=vision.patch_size,
                                               temporal_patch_size=vision.temporal_patch_size,
                                               merge_size=vision.spatial_merge_size, **kwargs)
    feature_extractor = WhisperFeatureExtractor(feature_size=config.audio_config.num_mel_bins)
    return NexusOProcessor(image_processor, feature_extractor, tokenizer,
                           audio_max_source_positions=config.audio_config.max_source_positions,
                           audio_stack_frames=config.adapter_config.stack_frames)


def build_preset(name: str = "tiny", seed: int | None = 0, **overrides):
    """(model, processor): a freshly initialised model of preset `name` and its processor.

    Only `tiny` carries a tokenizer of its own (trained locally); larger presets are built with
    `from_components` from real checkpoints. The model has a speech decoder where the preset
    (or an override) gives one: `tiny` has none; `load_model("tiny")` adds one.
    """
    if name != "tiny":
        raise ValueError(f"preset {name!r} has no built-in tokenizer; build it from checkpoints with "
                         f"nexus_o.from_components(vl=DIR, audio_encoder=DIR)")
    if seed is not None:
        torch.manual_seed(seed)
    config = preset_config(name, **overrides)
    tokenizer = build_tiny_tokenizer(config.vl_config.text_config.vocab_size)
    return NexusOForConditionalGeneration(config), build_processor(config, tokenizer, TINY_IMAGE_PIXELS)


def load_model(name_or_path: str | Path, dtype: torch.dtype | None = None) -> OmniModel:
    """An `OmniModel` from a preset name (`tiny`) or a folder written by `save_pretrained`.

    A preset comes with the built-in codec shipped with the package and, where the preset has
    none, a freshly initialised speech decoder sized to that codec (`TINY_SPEECH_DECODER`): random
    weights that speak noise, but every path from request to audio works. A folder comes with the
    codec saved in its `codec/` subfolder (none: the bundle answers in text only).
    """
    if str(name_or_path) in PRESETS:
        model, processor = build_preset(str(name_or_path))
        codec = default_codec()
        if codec is not None and model.speech_decoder is None:
            model.add_speech_decoder(speech_decoder_for(codec, model.config.vl_config.text_config.hidden_size))
        return OmniModel(model.to(dtype) if dtype is not None else model, processor, codec)
    path = Path(name_or_path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model checkpoint at {path} (config.json missing); pass a folder "
                                f"written by save_pretrained or a preset name: {sorted(PRESETS)}")
    register_auto_classes()
    model = NexusOForConditionalGeneration.from_pretrained(path, dtype=dtype)
    processor = NexusOProcessor.from_pretrained(path)
    codec = load_codec(path / CODEC_SUBDIR) if (path / CODEC_SUBDIR).is_dir() else None
    return OmniModel(model, processor, codec)


def speech_decoder_for(codec, llm_hidden_size: int, **widths) -> dict:
    """A `speech_decoder_config` that decodes exactly `codec`'s codes (`TINY_SPEECH_DECODER` widths
    unless `widths` say otherwise); 3 ids past the codec's entries are start, pad and end."""
    return dict(TINY_SPEECH_DECODER, **widths, num_codebooks=codec.num_codebooks,
                codebook_size=codec.codebook_size + 3, codec_entries=codec.codebook_size,
                llm_hidden_size=llm_hidden_size)


def default_codec():
    """The built-in codec fitted and shipped with the package, or None where it is absent."""
    return load_codec(default_codec_dir()) if default_codec_dir().is_dir() else None
