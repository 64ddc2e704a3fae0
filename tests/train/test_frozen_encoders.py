"""Frozen encoders run no backward, with or without activation checkpointing, for every stage config.

transformers' checkpointing makes the input embeddings of every sub-model require grad; before
the fix the frozen ViT's and Whisper's block outputs then required grad, and their backward ran
(recomputing every block) although nothing in them trained.
"""

from pathlib import Path

import pytest
import torch

from nexus_o.bundle.loading import build_preset
from nexus_o.config.loader import load_config
from nexus_o.train.components import apply_freeze, component_parameters
from nexus_o.train.config import TrainConfig
from tests.conftest import tone
from tests.train.conftest import TINY_DECODER

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STAGE_CONFIGS = sorted(CONFIGS.glob("*/stage*.yaml"))


@pytest.fixture(scope="module")
def model_and_batch():
    from PIL import Image

    model, processor = build_preset("tiny", seed=0)
    model.add_speech_decoder(TINY_DECODER)
    conv = {"messages": [{"role": "user", "content": "<image><audio>Say it"}, {"role": "assistant", "content": "red"}],
            "images": [Image.new("RGB", (56, 56), "red")], "audios": [tone(0.5)]}
    batch = dict(processor.apply_chat_template(conv, add_generation_prompt=False, return_labels=True))
    return model, batch


def _block_outputs_require_grad(model, batch: dict, stage: str) -> dict[str, bool]:
    """Runs forward + backward; {part: whether its last block's output required grad}."""
    seen: dict[str, bool] = {}

    def record(name):
        def hook(module, inputs, output):
            out = output if torch.is_tensor(output) else output[0]
            seen[name] = out.requires_grad
        return hook

    parts = {"vision_encoder": model.vl.model.visual.blocks[-1], "audio_encoder": model.audio_encoder.layers[-1],
             "llm": model.vl.model.language_model.layers[-1]}
    handles = [module.register_forward_hook(record(name)) for name, module in parts.items()]
    batch = dict(batch)
    labels = batch.pop("labels")
    if stage == "stage3_speech":
        batch["speech_codes"] = torch.randint(0, 64, (1, 4, 6), generator=torch.Generator().manual_seed(0))
        batch["speech_text_mask"] = labels != -100
    else:
        batch["labels"] = labels
    try:
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "checkpointing"])
@pytest.mark.parametrize("path", STAGE_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_frozen_encoders_run_no_backward(path, checkpointing, model_and_batch):
    model, batch = model_and_batch
    cfg = load_config(TrainConfig, path)
    trainable = cfg.trainable_components
    apply_freeze(model, trainable)
    model.train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    try:
        seen = _block_outputs_require_grad(model, batch, cfg.stage)
    finally:
        model.gradient_checkpointing_disable()
        model.disable_input_require_grads()
    for part in ("vision_encoder", "audio_encoder", "llm"):
        # A block's output needs grad exactly when that part (or something before it) trains.
        upstream = {"vision_encoder": {"vision_encoder"}, "audio_encoder": {"audio_encoder"},
                    "llm": {"llm", "vision_encoder", "vision_adapter", "audio_encoder", "audio_adapter"}}[part]
        assert seen[part] == bool(upstream & set(trainable)), (part, seen, trainable)
    for name in ("vision_encoder", "vision_adapter", "audio_encoder", "audio_adapter", "llm", "speech_decoder"):
        grads = [p.grad for _, p in component_parameters(model, name) if p.grad is not None]
        if name in trainable:
            assert any(g.abs().sum() > 0 for g in grads), f"{path.stem}: {name} trains but got no gradient"
        else:
            assert not grads, f"{path.stem}: frozen {name} got gradients"
