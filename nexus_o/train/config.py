"""The training run config: one schema for all three stages (paper §3.3, Table 1).

A stage is a config, not code: `stage` picks the default trainable components (the stage
table of SPEC.md), `phases` lists the data it runs in order (stage 3: TTS, then speech-to-speech
chat), everything else is ordinary training settings. Unknown keys are errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from nexus_o.config.loader import StrictModel

Component = Literal["vision_encoder", "vision_adapter", "audio_encoder", "audio_adapter", "llm", "lm_head",
                    "speech_decoder"]
COMPONENTS: tuple[str, ...] = Component.__args__  # type: ignore[attr-defined]

# The paper's stage table: what each stage trains by default (everything else is frozen).
STAGE_TRAINABLE: dict[str, list[str]] = {
    "stage1_align": ["audio_encoder", "audio_adapter"],
    "stage2_sft": ["vision_adapter", "audio_adapter", "llm", "lm_head"],
    "stage3_speech": ["speech_decoder"],
}


class ModelSpec(StrictModel):
    """Where the model comes from: a preset, a checkpoint folder, or component checkpoints."""

    preset: str | None = None
    path: str | None = None
    vl: str | None = None
    audio_encoder: str | None = None
    speech_decoder: dict | None = None  # sub-config to add a speech decoder if the model has none
    codec: str | None = None  # codec folder or name the speech codes belong to; saved with the model

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSpec":
        sources = [bool(self.preset), bool(self.path), bool(self.vl or self.audio_encoder)]
        if sum(sources) != 1:
            raise ValueError("give exactly one of model.preset, model.path, or model.vl + model.audio_encoder")
        if bool(self.vl) != bool(self.audio_encoder):
            raise ValueError("model.vl and model.audio_encoder go together")
        return self


class PhaseSpec(StrictModel):
    """One pass over some data: manifests to train on (and evaluate on), and its length."""

    name: str
    train: list[str] = Field(min_length=1)
    eval: list[str] = []
    max_steps: int = -1
    epochs: float = 1.0

    @model_validator(mode="after")
    def _length(self) -> "PhaseSpec":
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ValueError(f"phase {self.name!r} needs max_steps > 0 or epochs > 0")
        return self


class OptimSpec(StrictModel):
    lr: float = 1e-4
    lr_per_component: dict[Component, float] = {}
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    max_grad_norm: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)


class TrainConfig(StrictModel):
    """Everything one `nexus-o train` run needs."""

    stage: Literal["stage1_align", "stage2_sft", "stage3_speech"]
    model: ModelSpec
    phases: list[PhaseSpec] = Field(min_length=1)
    output_dir: str
    trainable: list[Component] | None = None  # default: the stage table
    optim: OptimSpec = OptimSpec()
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    gradient_checkpointing: bool = False
    checkpoint_every_n_layers: int = Field(1, ge=1)  # selective checkpointing: only every n-th block recomputes
    lm_loss: Literal["hf", "chunked", "liger"] = "hf"  # chunked/liger: no full-vocabulary fp32 logits (models/lm_loss.py)
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention"] | None = None
    compile_layers: bool = False  # torch.compile each LLM decoder layer (train/compiled_layers.py); not with FSDP/ZeRO-3
    seed: int = 0
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = 2
    logging_steps: int = Field(10, ge=1)
    eval_steps: int | None = None
    resume: str | None = None  # "auto" (latest checkpoint in output_dir) or a checkpoint folder
    stop_after_steps: int | None = None  # end this invocation early (time-boxed jobs); the schedule stays that of the whole run
    deepspeed: str | None = None  # a DeepSpeed JSON config (configs/deepspeed/zero2.json, zero3.json)
    fsdp: str | None = None  # e.g. "full_shard auto_wrap"; fsdp_config from configs/fsdp.json
    fsdp_config: str | None = None
    touch_all_encoders: bool | None = None  # None: on when distributed
    on_bad_lines: Literal["skip", "raise"] = "skip"
    dataloader_workers: int = 0
    cache_audio_encoder: bool = False  # memoise a frozen audio encoder's outputs (CPU runs, many epochs)
    group_by_length: bool = False  # batches of similar length (speech frames, else text characters): less padding
    # Stages 1-2: pack each batch's samples into rows of at most pack_to tokens, each sample with its own
    # positions and attending to itself only (train/packing.py); flash attention: one unpadded row instead.
    pack_to: int | None = Field(None, ge=1)

    @field_validator("trainable")
    @classmethod
    def _no_duplicates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"trainable lists a component twice: {value}")
        return value

    @model_validator(mode="after")
    def _packing_stage(self) -> "TrainConfig":
        if self.pack_to is not None and self.stage == "stage3_speech":
            raise ValueError("pack_to: stage 3 trains the speech decoder on each reply's own sequence and "
                             "cannot pack; packing is for stage1_align and stage2_sft")
        return self

    @model_validator(mode="after")
    def _compile_unsharded(self) -> "TrainConfig":
        if self.compile_layers and (self.deepspeed or self.fsdp):
            raise ValueError("compile_layers: compiling layers before FSDP or DeepSpeed wrap them is not "
                             "supported; train without compile_layers there")
        return self

    @property
    def trainable_components(self) -> list[str]:
        return list(self.trainable) if self.trainable is not None else STAGE_TRAINABLE[self.stage]
