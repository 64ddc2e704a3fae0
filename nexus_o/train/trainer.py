"""Training wiring on transformers' `Trainer`.

Why Trainer rather than a loop on accelerate: it already brings what a GPU user of this
pipeline needs and expects from the Hugging Face ecosystem (DeepSpeed ZeRO-2/3 and FSDP
integration, gradient accumulation, mixed precision, gradient checkpointing, and checkpoints
that resume exactly: optimizer, scheduler, RNG and data position), so we add only what is ours:
per-component parameter groups, crash-safe checkpoints, samples-a-second logging.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from nexus_o.bundle.omni import OmniModel
from nexus_o.train.components import param_groups

COMPLETE_MARKER = "checkpoint_complete.json"


class CheckpointWriteError(OSError):
    """Saving a checkpoint failed (often: out of disk); the partial folder was removed."""


def latest_complete_checkpoint(folder: str | Path) -> Path | None:
    """The highest-step `checkpoint-N` under `folder` whose save finished (it holds the marker)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / COMPLETE_MARKER).is_file()
            and p.name.split("-")[-1].isdigit()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


class NexusOTrainer(Trainer):
    """`Trainer` with per-component learning rates, crash-safe checkpoints and a choice of LM loss.

    lm_loss: "hf" (transformers' loss on full fp32 logits), "chunked" or "liger" (see
    `nexus_o.models.lm_loss`). The model computes either inside its forward, the last two in the
    LM head's own forward, where FSDP2 and DeepSpeed ZeRO-3 hold the head's weight whole; so they
    run under sharding too, and the rest (`num_items_in_batch`, token averaging across ranks,
    gradient accumulation) is Trainer's own loss handling.
    """

    def __init__(self, *args, lr_per_component: dict[str, float] | None = None,
                 betas: tuple[float, float] = (0.9, 0.999), lm_loss: str = "hf", **kwargs):
        self.lr_per_component = dict(lr_per_component or {})
        self.betas = betas
        self.lm_loss = lm_loss
        super().__init__(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.lm_loss != "hf" and inputs.get("labels") is not None:
            inputs = {**inputs, "lm_loss": self.lm_loss}
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            groups = param_groups(self.model, self.args.learning_rate, self.lr_per_component,
                                  self.args.weight_decay)
            self.optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate, betas=self.betas,
                                               eps=self.args.adam_epsilon)
        return self.optimizer

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        """Load weights through `from_pretrained`, which knows the saved key layout of the parts."""
        model = model if model is not None else self.model
        loaded = type(self.accelerator.unwrap_model(model)).from_pretrained(resume_from_checkpoint)
        if self.is_fsdp_enabled:  # whole tensors in, each rank keeps its shard
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

            result = set_model_state_dict(model, loaded.state_dict(),
                                          options=StateDictOptions(full_state_dict=True, strict=False))
            missing, unexpected = result.missing_keys, result.unexpected_keys
        else:
            missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
        if missing or unexpected:
            raise ValueError(f"checkpoint {resume_from_checkpoint} does not fit the model: missing "
                             f"{missing[:5]}, unexpected {unexpected[:5]}")

    def _save(self, output_dir=None, state_dict=None) -> None:
        """Save as Trainer does, with any still-sharded FSDP2 tensor (DTensor) gathered first.

        accelerate's full state dict comes back gathered on GPUs; on CPU process groups torch
        leaves DTensors in it, which safetensors cannot write. Every rank gets here (FSDP saves
        are collective), so gathering is safe.
        """
        if state_dict is not None:
            state_dict = _whole(state_dict)
        super()._save(output_dir, state_dict=state_dict)

    def _save_checkpoint(self, model, trial) -> None:
        """Save as usual, then mark the folder complete; a failed save leaves no half checkpoint."""
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        try:
            super()._save_checkpoint(model, trial)
        except OSError as err:
            if self.args.should_save and folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
            latest = latest_complete_checkpoint(folder.parent)
            reason = "out of disk space" if err.errno == errno.ENOSPC else str(err)
            raise CheckpointWriteError(
                err.errno, f"saving {folder} failed ({reason}); the partial folder was removed. "
                f"Latest complete checkpoint: {latest or 'none'}") from err
        if self.args.should_save:
            (folder / COMPLETE_MARKER).write_text(json.dumps({"global_step": self.state.global_step}))


class ThroughputCallback(TrainerCallback):
    """Adds `samples_per_second` (over the last logging interval) to every training log."""

    def __init__(self, samples_per_step: int):
        self.samples_per_step = samples_per_step
        self._last: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = (time.perf_counter(), state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs or self._last is None:
            return
        now = time.perf_counter()
        t0, step0 = self._last
        if state.global_step > step0 and now > t0:
            logs["samples_per_second"] = round((state.global_step - step0) * self.samples_per_step / (now - t0), 3)
        self._last = (now, state.global_step)


class StopAfterCallback(TrainerCallback):
    """Ends training after `steps` global steps with a checkpoint, as a wall-time limit would."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
            control.should_save = True
            control.should_training_stop = True


def full_state_dict(trainer: Trainer) -> dict | None:
    """The whole weights of a sharded model (a collective: call it on every rank); None when the
    model is not sharded (its own state dict is whole). FSDP: on every rank; DeepSpeed ZeRO-3
    (whose parameters are empty placeholders outside forward): gathered on rank 0."""
    if trainer.is_deepspeed_enabled:
        return trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if not trainer.is_fsdp_enabled:
        return None
    state = trainer.accelerator.get_state_dict(trainer.model)
    return _whole(state)


def _whole(state: dict) -> dict:
    """`state` with every FSDP2-sharded tensor (DTensor) gathered whole (a collective)."""
    return {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in state.items()}


def save_final(omni: OmniModel, out_dir: str | Path, state_dict: dict | None = None) -> Path:
    """Save the bundle (model + processor + codec) into `out_dir` atomically (temporary sibling,
    then rename); `state_dict` as `full_state_dict` gives it under FSDP."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        omni.save_pretrained(tmp, state_dict=state_dict)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = "out of disk space" if err.errno == errno.ENOSPC else str(err)
        raise CheckpointWriteError(err.errno, f"saving {out_dir} failed ({reason}); nothing was replaced") from err
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
    return out_dir
