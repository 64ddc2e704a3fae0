"""The models the alignment analysis compares: ours (NEXUS-O) and a plain Qwen2.5-VL baseline.

Feature extraction needs the same three things from both: the Qwen2.5-VL part (vision tower +
merger, token embeddings, LLM), a processor that renders the same prompts the same way, and,
for ours only, the audio path. :class:`Backbone` holds them. The baseline gets our
``NexusOProcessor`` around its own tokenizer and image processor, so both models see
token-identical prompts built by one chat template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nexus_o.bundle.loading import load_model
from nexus_o.bundle.presets import PRESETS
from nexus_o.models.modeling import NexusOForConditionalGeneration
from nexus_o.processing.processor import NexusOProcessor
from nexus_o.processing.tokenizer import add_audio_tokens

if TYPE_CHECKING:
    from transformers import Qwen2_5_VLForConditionalGeneration

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Backbone:
    """One model under analysis.

    Attributes:
        name: how outputs label it ("ours", "baseline").
        label: a readable name for tables and plots (the checkpoint's folder name).
        vl: the Qwen2.5-VL model (``model.vl`` of ours, the whole baseline).
        processor: renders prompts and media into model inputs.
        omni: our full model (runs audio), or None for the baseline.
    """

    name: str
    label: str
    vl: Qwen2_5_VLForConditionalGeneration
    processor: NexusOProcessor
    omni: NexusOForConditionalGeneration | None = None

    @property
    def device(self) -> torch.device:
        return self.vl.get_input_embeddings().weight.device

    @property
    def has_audio(self) -> bool:
        return self.omni is not None

    @property
    def num_layers(self) -> int:
        """Decoder layers of the LLM (hidden states per prompt: this + 1)."""
        return self.vl.config.text_config.num_hidden_layers

    def forward(self, **inputs):
        """The model's forward pass on processor outputs (audio goes through ``omni``)."""
        return (self.omni or self.vl)(**inputs)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means the first GPU when there is one, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A dtype from its name ("float32", "bfloat16", "float16"); None keeps the checkpoint's."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)}")
    return _DTYPES[dtype]


def load_ours(name_or_path: str | Path, device: str | torch.device | None = None,
              dtype: str | torch.dtype | None = None) -> Backbone:
    """Our model from a preset name (``tiny``) or a saved checkpoint folder, in eval mode.

    Raises:
        FileNotFoundError: the folder holds no checkpoint.
    """
    dtype = resolve_dtype(dtype)
    omni = load_model(name_or_path, dtype=dtype)
    model, processor = omni.model, omni.processor
    model.to(device=resolve_device(device), dtype=dtype).eval()
    label = str(name_or_path) if str(name_or_path) in PRESETS else Path(name_or_path).resolve().name
    return Backbone("ours", f"NEXUS-O ({label})", model.vl, processor, omni=model)


def load_baseline(path: str | Path, device: str | torch.device | None = None,
                  dtype: str | torch.dtype | None = None) -> Backbone:
    """A plain Qwen2.5-VL checkpoint folder (config, weights, tokenizer, image processor), in eval mode.

    It has no audio path; the audio placeholder tokens are added to its tokenizer in memory only
    because our processor names them (they never reach the model).

    Raises:
        FileNotFoundError: no config.json in the folder.
        ValueError: the checkpoint is not a Qwen2.5-VL model.
    """
    from transformers import (
        AutoImageProcessor,
        AutoTokenizer,
        Qwen2_5_VLForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"no Qwen2.5-VL checkpoint at {path} (config.json missing)")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type != "qwen2_5_vl":
        raise ValueError(f"--baseline expects a Qwen2.5-VL checkpoint (model_type 'qwen2_5_vl'); "
                         f"{config_file} has model_type {model_type!r}")
    vl = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=resolve_dtype(dtype))
    vl.to(resolve_device(device)).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    add_audio_tokens(tokenizer)
    processor = NexusOProcessor(AutoImageProcessor.from_pretrained(path), WhisperFeatureExtractor(), tokenizer)
    return Backbone("baseline", f"Qwen2.5-VL ({path.resolve().name})", vl, processor)


def save_vl_checkpoint(model: NexusOForConditionalGeneration, processor: NexusOProcessor,
                       folder: str | Path) -> Path:
    """Write our model's Qwen2.5-VL part as a plain Qwen2.5-VL checkpoint that :func:`load_baseline` reads.

    Without audio our model computes exactly what this checkpoint computes, so as a baseline it
    must score the same as ours on every vision pair: a check of the whole pipeline.
    """
    folder = Path(folder)
    model.vl.save_pretrained(folder)
    processor.tokenizer.save_pretrained(folder)
    processor.image_processor.save_pretrained(folder)
    return folder
