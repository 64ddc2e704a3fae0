"""The composite NEXUS-O configuration, in the Hugging Face format.

`NexusOConfig` holds one sub-config per component:

- `vl_config`: transformers' `Qwen2_5_VLConfig` (vision tower + language model), used as is;
- `audio_config`: transformers' `WhisperConfig`, of which only the encoder is built;
- `adapter_config`: our `AudioAdapterConfig` (frames stacked, widths);
- `speech_decoder_config`: optional, the AR speech decoder (speech-output issue);

plus the audio special-token ids. (The codec is no part of the model: a checkpoint keeps it in
its `codec/` folder, and the speech decoder checks that it fits.) Every layer is strict: an unknown key is
an error that names the key and where it was found, never a silently ignored typo.
"""

# No `from __future__ import annotations`: `@strict` checks field types from the live annotations.
import dataclasses
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import Qwen2_5_VLConfig, WhisperConfig
from transformers.configuration_utils import PreTrainedConfig

# Keys every saved Hugging Face config carries besides its own fields.
_HF_BOOKKEEPING = {"model_type", "transformers_version", "torch_dtype", "_name_or_path", "name_or_path", "_commit_hash",
                   "_attn_implementation_autoset", "use_cache", "tie_word_embeddings", "output_attentions",
                   "pruned_heads", "torchscript", "tie_encoder_decoder", "use_bfloat16", "tf_legacy_loss"}


_LEGACY_KEYS = ("codec", "codec_config")


def _known_fields(cls: type) -> set[str]:
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    return names | _HF_BOOKKEEPING | set(getattr(cls, "attribute_map", {}))


def reject_unknown_keys(cls: type, keys: dict[str, Any] | set[str], where: str) -> None:
    """Raise `ValueError` naming every key of `keys` that `cls` does not define."""
    unknown = sorted(set(keys) - _known_fields(cls))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where} ({cls.__name__}); "
                         f"known keys: {sorted(_known_fields(cls) - _HF_BOOKKEEPING)}")


def strict_subconfig(cls: type[PreTrainedConfig], value: dict | PreTrainedConfig | None,
                     where: str, nested: dict[str, type] | None = None) -> PreTrainedConfig:
    """Build a transformers sub-config from a dict after checking its keys (and its nested ones)."""
    if isinstance(value, PreTrainedConfig):
        return value
    value = dict(value or {})
    reject_unknown_keys(cls, value, where)
    for key, sub_cls in (nested or {}).items():
        if isinstance(value.get(key), dict):
            reject_unknown_keys(sub_cls, value[key], f"{where}.{key}")
    return cls(**value)


# Whisper-large-v3's encoder shape: the default audio encoder, as in the paper.
WHISPER_LARGE_V3_ENCODER = {
    "d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120,
    "decoder_layers": 32, "decoder_attention_heads": 20, "decoder_ffn_dim": 5120,
    "num_mel_bins": 128, "max_source_positions": 1500, "vocab_size": 51866,
}


class _StrictConfig(PreTrainedConfig):
    """Base of our own configs: leftover keyword arguments are unknown keys, hence errors."""

    def __post_init__(self, **kwargs):
        leftovers = {k for k in kwargs if k not in _HF_BOOKKEEPING}
        if leftovers:
            reject_unknown_keys(type(self), leftovers, self.model_type)
        super().__post_init__(**{k: v for k, v in kwargs.items() if k in _HF_BOOKKEEPING})


@strict
class AudioAdapterConfig(_StrictConfig):
    """The audio adapter: `stack_frames` encoder frames concatenated, then two linear layers.

    input_size: the audio encoder width (1280 for Whisper-large-v3).
    intermediate_size: width after the first layer (the LLM width in the paper).
    output_size: the LLM width (3584 for Qwen2.5-VL-7B).
    """

    model_type = "nexus_o_audio_adapter"
    base_config_key = "adapter_config"

    stack_frames: int = 5
    input_size: int = 1280
    intermediate_size: int = 3584
    output_size: int = 3584
    hidden_act: str = "gelu"


@strict
class NexusOConfig(_StrictConfig):
    """Composite config of `NexusOForConditionalGeneration`.

    The audio token ids index the shared tokenizer: `audio_token_id` is the placeholder that
    audio embeddings replace, `audio_start_token_id` / `audio_end_token_id` frame each clip.
    The audio encoder's window follows from `audio_config.max_source_positions` (Whisper: 1500
    positions = 3000 mel frames = 30 s); longer clips are encoded window by window and
    concatenated, never clipped.
    """

    model_type = "nexus_o"
    sub_configs = {"vl_config": Qwen2_5_VLConfig, "audio_config": WhisperConfig,
                   "adapter_config": AudioAdapterConfig}

    vl_config: dict | PreTrainedConfig | None = None
    audio_config: dict | PreTrainedConfig | None = None
    adapter_config: dict | PreTrainedConfig | None = None
    speech_decoder_config: dict | PreTrainedConfig | None = None
    audio_token_id: int = 151665
    audio_start_token_id: int = 151666
    audio_end_token_id: int = 151667

    def __post_init__(self, **kwargs):
        # Checkpoints written before 0.1.1 carry `codec` / `codec_config`, which nothing ever read
        # (the codec is the checkpoint's codec/ folder); they are dropped so those folders load.
        for legacy in _LEGACY_KEYS:
            kwargs.pop(legacy, None)
        from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import (
            Qwen2_5_VLTextConfig, Qwen2_5_VLVisionConfig)

        self.vl_config = strict_subconfig(
            Qwen2_5_VLConfig, self.vl_config, "vl_config",
            nested={"text_config": Qwen2_5_VLTextConfig, "vision_config": Qwen2_5_VLVisionConfig})
        self.audio_config = strict_subconfig(
            WhisperConfig, WHISPER_LARGE_V3_ENCODER if self.audio_config is None else self.audio_config,
            "audio_config")
        self.adapter_config = strict_subconfig(AudioAdapterConfig, self.adapter_config, "adapter_config")
        if self.speech_decoder_config is not None:
            from nexus_o.models.speech_decoder_config import SpeechDecoderConfig
            self.speech_decoder_config = strict_subconfig(
                SpeechDecoderConfig, self.speech_decoder_config, "speech_decoder_config")
        super().__post_init__(**kwargs)
        self.check_widths()

    @property
    def text_config(self):
        """The LLM's config (`Qwen2_5_VLTextConfig`), as generation utilities expect."""
        return self.vl_config.text_config

    def get_text_config(self, *args, **kwargs):
        return self.vl_config.get_text_config(*args, **kwargs)

    def check_widths(self) -> None:
        """Check that encoder, adapter and LLM widths fit; the error names both sides."""
        enc, ad, llm = self.audio_config.d_model, self.adapter_config, self.vl_config.text_config.hidden_size
        if ad.input_size != enc:
            raise ValueError(f"adapter_config.input_size={ad.input_size} does not match "
                             f"audio_config.d_model={enc}")
        if ad.output_size != llm:
            raise ValueError(f"adapter_config.output_size={ad.output_size} does not match "
                             f"vl_config.text_config.hidden_size={llm}")
        sd = self.speech_decoder_config
        if sd is not None and sd.llm_hidden_size != llm:
            raise ValueError(f"speech_decoder_config.llm_hidden_size={sd.llm_hidden_size} does not match "
                             f"vl_config.text_config.hidden_size={llm}")
        vocab = self.vl_config.text_config.vocab_size
        for name in ("audio_token_id", "audio_start_token_id", "audio_end_token_id"):
            if not 0 <= getattr(self, name) < vocab:
                raise ValueError(f"{name}={getattr(self, name)} is outside the LLM vocabulary "
                                 f"(vl_config.text_config.vocab_size={vocab})")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in ("vl_config", "audio_config", "adapter_config", "speech_decoder_config"):
            value = getattr(self, key)
            out[key] = value.to_dict() if isinstance(value, PreTrainedConfig) else value
        return out
