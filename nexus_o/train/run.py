"""`nexus-o train`: run one stage (its phases in order) from a `TrainConfig`.

Each phase trains on its manifests with transformers' Trainer into `output_dir/<phase>/`
(checkpoints `checkpoint-N`, then `final/` written atomically) and hands its model to the next
phase; the stage's model ends in `output_dir/final/`. With `resume: auto` a killed run picks up
from the latest complete checkpoint, and finished phases are not run again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from transformers import TrainingArguments, set_seed

from nexus_o.bundle.from_components import from_components
from nexus_o.bundle.loading import build_preset, load_model
from nexus_o.bundle.omni import OmniModel
from nexus_o.codecs.registry import resolve_codec
from nexus_o.config.loader import dump_config
from nexus_o.data.dataset import load_manifest_dataset
from nexus_o.data.manifest import RejectLog
from nexus_o.train.collate import TrainCollator
from nexus_o.train.compiled_layers import compile_decoder_layers
from nexus_o.train.components import apply_freeze, format_counts
from nexus_o.train.config import ModelSpec, PhaseSpec, TrainConfig
from nexus_o.train.packing import SamplePacker
from nexus_o.train.plots import plot_losses
from nexus_o.train.trainer import (
    NexusOTrainer,
    StopAfterCallback,
    ThroughputCallback,
    full_state_dict,
    latest_complete_checkpoint,
    save_final,
)


def load_training_model(spec: ModelSpec) -> OmniModel:
    """The bundle as the spec says: a speech decoder added when asked for, `spec.codec` (a codec
    folder or name) replacing the checkpoint's codec; the codec is saved with every final model."""
    if spec.preset:
        omni = OmniModel(*build_preset(spec.preset))
    elif spec.path:
        omni = load_model(spec.path)
    else:
        omni = from_components(vl=spec.vl, audio_encoder=spec.audio_encoder)
    if spec.codec is not None:
        omni.codec = resolve_codec(spec.codec)
    if spec.speech_decoder is not None and omni.model.speech_decoder is None:
        omni.model.add_speech_decoder(spec.speech_decoder)
    if omni.codec is not None and omni.model.speech_decoder is not None:
        omni.model.speech_decoder.check_codec(omni.codec)
    return omni


def _is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _training_args(cfg: TrainConfig, phase: PhaseSpec, out: Path) -> TrainingArguments:
    cpu = not torch.cuda.is_available()
    fsdp_config = json.loads(Path(cfg.fsdp_config).read_text()) if cfg.fsdp_config else None
    return TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, warmup_steps=cfg.optim.warmup_ratio,  # a float below 1 is a ratio of the run
        lr_scheduler_type=cfg.optim.scheduler, max_grad_norm=cfg.optim.max_grad_norm,
        max_steps=phase.max_steps, num_train_epochs=phase.epochs, logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, seed=cfg.seed, data_seed=cfg.seed,
        bf16=cfg.precision == "bf16", fp16=cfg.precision == "fp16",
        # every n-th block: enabled on the model in run_training (Trainer knows only "all blocks")
        gradient_checkpointing=cfg.gradient_checkpointing and cfg.checkpoint_every_n_layers == 1,
        deepspeed=cfg.deepspeed, fsdp=cfg.fsdp or "", fsdp_config=fsdp_config, remove_unused_columns=False,
        report_to=[], use_cpu=cpu, ddp_backend="gloo" if cpu and _is_distributed() else None,
        dataloader_num_workers=cfg.dataloader_workers, eval_strategy="steps" if phase.eval and cfg.eval_steps else "no",
        eval_steps=cfg.eval_steps, per_device_eval_batch_size=cfg.batch_size, disable_tqdm=False,
        # The model's forward takes its targets through **kwargs, where Trainer cannot find them:
        # name them, or evaluation runs without a loss. Only the validation loss is wanted.
        label_names=["speech_codes"] if cfg.stage == "stage3_speech" else ["labels"], prediction_loss_only=True,
        ddp_find_unused_parameters=False,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random", length_column_name="length")


def sample_length(row: dict) -> int:
    """How long a row is to batch it with rows like it: speech-target frames when it has codes
    (stage 3: the speech decoder's sequence dominates), else the characters of its messages."""
    if row.get("speech_codes_file"):
        return int(np.load(row["speech_codes_file"], mmap_mode="r").shape[-1])
    if row.get("speech_codes"):
        return len(row["speech_codes"][0])
    return sum(len(m["content"]) for m in row["messages"])


def _pointer_frame_rate(omni: OmniModel, cfg: TrainConfig) -> float | None:
    """The codec's frame rate when stage 3 trains a "pointer" speech decoder (its targets are per
    frame), else None."""
    decoder = omni.model.speech_decoder
    if cfg.stage != "stage3_speech" or decoder is None or decoder.alignment != "pointer":
        return None
    if omni.codec is None:
        raise ValueError(f"{cfg.model.path or cfg.model.preset}: the 'pointer' speech decoder trains on word "
                         "timings in codec frames, but the checkpoint has no codec (codec/ folder)")
    return float(omni.codec.frame_rate)


def _packer(omni: OmniModel, cfg: TrainConfig) -> SamplePacker | None:
    """The sample packer when `cfg.pack_to` is set (all samples in one row under flash attention), else None."""
    if cfg.pack_to is None:
        return None
    return SamplePacker.for_model(omni.model, omni.processor.tokenizer.pad_token_id, cfg.pack_to)


def run_training(cfg: TrainConfig, console: Console | None = None) -> Path:
    """Train every phase of `cfg`; returns the folder of the final model."""
    console = console or Console()
    torch.set_flush_denormal(True)
    out_root = Path(cfg.output_dir)
    out_root.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out_root / "train_config.yaml")
    set_seed(cfg.seed)
    omni = load_training_model(cfg.model)
    model, processor = omni.model, omni.processor
    counts = apply_freeze(model, cfg.trainable_components)
    if cfg.attn_implementation:
        model.set_attn_implementation(cfg.attn_implementation)
    if cfg.gradient_checkpointing and cfg.checkpoint_every_n_layers > 1:
        model.activation_checkpointing_enable(every_n_layers=cfg.checkpoint_every_n_layers)
    if cfg.cache_audio_encoder:
        model.enable_audio_encoder_cache()
    if cfg.compile_layers:
        compile_decoder_layers(model)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if rank0:
        console.print(f"[bold]{cfg.stage}[/]: trainable parameters per component\n{format_counts(counts)}")
    touch = cfg.touch_all_encoders if cfg.touch_all_encoders is not None else _is_distributed()
    rejects = RejectLog(out_root / "rejects.jsonl")
    histories: dict[str, list[dict]] = {}
    weights = None  # the last phase's gathered weights under FSDP
    for phase in cfg.phases:
        out = out_root / phase.name
        final = out / "final"
        if cfg.resume == "auto" and (final / "config.json").is_file():
            console.print(f"phase {phase.name}: already finished, loading {final}")
            model.load_state_dict(type(model).from_pretrained(final).state_dict())
            histories[phase.name] = json.loads((out / "log_history.json").read_text())
            continue
        set_seed(cfg.seed)
        train = load_manifest_dataset(phase.train, on_error=cfg.on_bad_lines, rejects=rejects)
        if cfg.group_by_length:
            train = train.map(lambda row: {"length": sample_length(row)}, desc="lengths")
        evals = load_manifest_dataset(phase.eval, on_error=cfg.on_bad_lines, rejects=rejects) if phase.eval else None
        world = int(os.environ.get("WORLD_SIZE", "1"))
        callbacks = [ThroughputCallback(cfg.batch_size * cfg.grad_accum * world)]
        if cfg.stop_after_steps:
            callbacks.append(StopAfterCallback(cfg.stop_after_steps))
        trainer = NexusOTrainer(
            model=model, args=_training_args(cfg, phase, out), train_dataset=train, eval_dataset=evals,
            data_collator=TrainCollator(processor, speech=cfg.stage == "stage3_speech", rejects=rejects,
                                        frame_rate=_pointer_frame_rate(omni, cfg), touch_all_encoders=touch,
                                        packer=_packer(omni, cfg)),
            processing_class=processor, callbacks=callbacks,
            lr_per_component=cfg.optim.lr_per_component, betas=cfg.optim.betas, lm_loss=cfg.lm_loss)
        resume = None
        if cfg.resume == "auto":
            resume = latest_complete_checkpoint(out)
        elif cfg.resume:
            resume = Path(cfg.resume)
            if not (resume / "trainer_state.json").is_file():
                raise FileNotFoundError(f"resume checkpoint {resume} is not a complete Trainer checkpoint")
        if resume and rank0:
            console.print(f"phase {phase.name}: resuming from {resume}")
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        weights = full_state_dict(trainer)  # FSDP: gathered on every rank; else None (the model's own)
        histories[phase.name] = trainer.state.log_history
        if cfg.stop_after_steps and trainer.state.global_step < trainer.state.max_steps:
            console.print(f"phase {phase.name}: stopped after step {trainer.state.global_step} as asked; "
                          f"run again with resume=auto to continue")
            (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
            return out
        if trainer.args.should_save:
            save_final(omni, final, state_dict=weights)
            (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    final = out_root / "final"
    if rank0:
        save_final(omni, final, state_dict=weights)
        plot_losses(histories, out_root / "loss.png", title=cfg.stage)
        console.print(f"[green]done[/]: model in {final}, loss curve in {out_root / 'loss.png'}")
    return final

