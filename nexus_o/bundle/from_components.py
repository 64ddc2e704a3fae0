"""`from_components`: assemble NEXUS-O from local Qwen2.5-VL and Whisper checkpoint folders.

Nothing is downloaded. The Qwen2.5-VL folder gives the vision tower, LLM, LM head, tokenizer and
image processor; the Whisper folder gives the encoder (from a `WhisperModel`,
`WhisperForConditionalGeneration` or bare-encoder checkpoint). The adapter (and the speech
decoder, if asked for) start from fresh initialisation. Weights are read from safetensors, or
from PyTorch files with `weights_only=True`: never an unrestricted unpickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from nexus_o.bundle.omni import OmniModel
from nexus_o.bundle.loading import build_processor
from nexus_o.models.adapter import AudioAdapter
from nexus_o.models.configuration import NexusOConfig
from nexus_o.models.modeling import NexusOForConditionalGeneration
from nexus_o.models.speech_decoder import SpeechDecoder
from nexus_o.processing.tokenizer import add_audio_tokens

_ENCODER_PREFIXES = ("model.encoder.", "encoder.", "")


def _read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors"))
    if files:
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(f)))
        return state
    bins = sorted(folder.glob("*.bin"))
    if bins:
        state = {}
        for f in bins:
            state.update(torch.load(f, map_location="cpu", weights_only=True))
        return state
    raise FileNotFoundError(f"no *.safetensors (or *.bin) weights in {folder}")


def load_whisper_encoder(folder: Path, dtype: torch.dtype | None = None,
                         max_source_positions: int | None = None) -> WhisperEncoder:
    """A `WhisperEncoder` with the encoder weights of the Whisper checkpoint in `folder`.

    max_source_positions: a shorter encoder window than the checkpoint's (Whisper: 1500
    positions = 30 s), keeping the first rows of the position table. The paper's setting is the
    full window; short windows make short clips cheap on a CPU (the tiny world uses 3 s).
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no Whisper checkpoint at {folder} (config.json missing)")
    config = WhisperConfig.from_pretrained(folder)
    full = config.max_source_positions
    if max_source_positions is not None:
        if not 0 < max_source_positions <= full:
            raise ValueError(f"max_source_positions={max_source_positions} must be in [1, {full}] "
                             f"(the checkpoint's window) for {folder}")
        config.max_source_positions = max_source_positions
    encoder = WhisperEncoder(config)
    state = _read_state_dict(folder)
    wanted = set(encoder.state_dict())
    for prefix in _ENCODER_PREFIXES:
        picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and k[len(prefix):] in wanted}
        if "conv1.weight" in picked:
            break
    missing = wanted - set(picked) - {"embed_positions.weight"}
    if missing:
        raise ValueError(f"Whisper checkpoint {folder} lacks encoder weights: {sorted(missing)[:8]}")
    if "embed_positions.weight" in picked:
        picked["embed_positions.weight"] = picked["embed_positions.weight"][: config.max_source_positions]
    encoder.load_state_dict(picked, strict=False)
    return encoder.to(dtype) if dtype is not None else encoder


def from_components(vl: str | Path, audio_encoder: str | Path, *, adapter: dict | None = None,
                    speech_decoder: dict | None = None, dtype: torch.dtype | None = None) -> OmniModel:
    """Build the model from local checkpoint folders (Hugging Face layouts, no download).

    vl: a Qwen2.5-VL checkpoint folder (model + tokenizer + processor files).
    audio_encoder: a Whisper checkpoint folder (`WhisperModel` / `WhisperForConditionalGeneration`
        / a bare encoder); only the encoder weights are taken.
    adapter / speech_decoder: optional sub-config overrides (dicts, strict keys).
    Returns an `OmniModel` without codec: the tokenizer gains the audio special tokens and the
    embeddings are resized when the vocabulary needs it.
    """
    vl_dir, audio_dir = Path(vl), Path(audio_encoder)
    if not (vl_dir / "config.json").is_file():
        raise FileNotFoundError(f"no Qwen2.5-VL checkpoint at {vl_dir} (config.json missing)")
    vl_model = Qwen2_5_VLForConditionalGeneration.from_pretrained(vl_dir, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(vl_dir)
    token_ids = add_audio_tokens(tokenizer)
    if len(tokenizer) > vl_model.config.text_config.vocab_size:
        vl_model.resize_token_embeddings(len(tokenizer))
    encoder = load_whisper_encoder(audio_dir, dtype)

    hidden = vl_model.config.text_config.hidden_size
    adapter_cfg = {"input_size": encoder.config.d_model, "intermediate_size": hidden, "output_size": hidden,
                   **(adapter or {})}
    config = NexusOConfig(vl_config=vl_model.config, audio_config=encoder.config, adapter_config=adapter_cfg,
                          speech_decoder_config=speech_decoder, **token_ids)
    with torch.device("meta"):
        model = NexusOForConditionalGeneration(config)
    model.vl, model.audio_encoder = vl_model, encoder
    ad = config.adapter_config
    model.audio_adapter = AudioAdapter(stack_frames=ad.stack_frames, input_size=ad.input_size,
                                       intermediate_size=ad.intermediate_size, output_size=ad.output_size,
                                       hidden_act=ad.hidden_act)
    model.audio_adapter.apply(model._init_weights)
    if config.speech_decoder_config is not None:
        model.speech_decoder = SpeechDecoder.from_config(config.speech_decoder_config)
    if dtype is not None:
        model.to(dtype)
    return OmniModel(model, build_processor(config, tokenizer, _image_pixels(vl_dir)))


def _image_pixels(vl_dir: Path) -> dict | None:
    """The checkpoint's own image size limits, if its processor config names them."""

    for name in ("preprocessor_config.json", "processor_config.json"):
        path = vl_dir / name
        if path.is_file():
            cfg = json.loads(path.read_text())
            cfg = cfg.get("image_processor", cfg)
            if "size" in cfg:
                return cfg["size"]
            if "min_pixels" in cfg and "max_pixels" in cfg:
                return {"shortest_edge": cfg["min_pixels"], "longest_edge": cfg["max_pixels"]}
    return None
