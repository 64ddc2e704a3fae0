"""Build or load a (model, processor) pair: a preset name or a saved checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import torch

from nexus_o.models.configuration import NexusOConfig
from nexus_o.models.presets import PRESETS, preset_config

CODEC_SUBDIR = "codec"  # a checkpoint keeps its codec here, next to config.json

# The tiny preset keeps images small so that CPU runs stay fast: at most 64 merged tokens.
TINY_IMAGE_PIXELS = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64}


def register_auto_classes() -> None:
    """Make `AutoConfig` / `AutoModel` / `AutoProcessor` know nexus-o folders (idempotent).

    Called by our loaders rather than at import, so importing nexus_o changes nothing global.
    """
    from transformers import AutoConfig, AutoModel, AutoProcessor

    from nexus_o.models.modeling import NexusOForConditionalGeneration
    from nexus_o.processing.processor import NexusOProcessor

    try:
        AutoConfig.register("nexus_o", NexusOConfig)
        AutoModel.register(NexusOConfig, NexusOForConditionalGeneration)
        AutoProcessor.register(NexusOConfig, NexusOProcessor)
    except ValueError:  # already registered
        pass


def build_processor(config: NexusOConfig, tokenizer, image_pixels: dict | None = None):
    """A `NexusOProcessor` whose audio/vision settings match `config`."""
    from transformers import Qwen2VLImageProcessorPil, WhisperFeatureExtractor

    from nexus_o.processing.processor import NexusOProcessor

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
    """A freshly initialised model of preset `name` and its processor.

    Only `tiny` carries a tokenizer of its own (trained locally); larger presets are built
    with `from_components` from real checkpoints.
    """
    from nexus_o.models.modeling import NexusOForConditionalGeneration
    from nexus_o.processing.tokenizer import build_tiny_tokenizer

    if name != "tiny":
        raise ValueError(f"preset {name!r} has no built-in tokenizer; build it from checkpoints with "
                         f"NexusOForConditionalGeneration.from_components(vl=DIR, audio_encoder=DIR)")
    if seed is not None:
        torch.manual_seed(seed)
    config = preset_config(name, **overrides)
    tokenizer = build_tiny_tokenizer(config.vl_config.text_config.vocab_size)
    return NexusOForConditionalGeneration(config), build_processor(config, tokenizer, TINY_IMAGE_PIXELS)


def load_model(name_or_path: str | Path, dtype: torch.dtype | None = None):
    """(model, processor) from a preset name (`tiny`) or a folder written by `save_pretrained`."""
    from nexus_o.models.modeling import NexusOForConditionalGeneration
    from nexus_o.processing.processor import NexusOProcessor

    if str(name_or_path) in PRESETS:
        model, processor = build_preset(str(name_or_path))
        model.attach(processor, default_codec() if model.speech_decoder is not None else None)
        return model, processor
    path = Path(name_or_path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model checkpoint at {path} (config.json missing); pass a folder "
                                f"written by save_pretrained or a preset name: {sorted(PRESETS)}")
    register_auto_classes()
    model = NexusOForConditionalGeneration.from_pretrained(path, dtype=dtype)
    processor = NexusOProcessor.from_pretrained(path)
    codec = None
    if (path / CODEC_SUBDIR).is_dir():
        from nexus_o.codecs.registry import load_codec

        codec = load_codec(path / CODEC_SUBDIR)
    model.attach(processor, codec)
    return model, processor


def default_codec():
    """The built-in codec fitted and shipped with the package, or None where it is absent."""
    from nexus_o.codecs.builtin import default_codec_dir
    from nexus_o.codecs.registry import load_codec

    return load_codec(default_codec_dir()) if default_codec_dir().is_dir() else None
