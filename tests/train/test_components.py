"""Freezing by component: each stage trains exactly what its config says."""

import pytest
import torch

from nexus_o.bundle.loading import build_preset
from nexus_o.train.components import apply_freeze, component_parameters, param_groups
from nexus_o.train.config import COMPONENTS, STAGE_TRAINABLE
from tests.conftest import tone
from tests.train.conftest import TINY_DECODER


@pytest.fixture(scope="module")
def model_and_processor():
    model, processor = build_preset("tiny", seed=0)
    model.add_speech_decoder(TINY_DECODER)
    return model, processor


@pytest.mark.parametrize("stage", list(STAGE_TRAINABLE))
def test_stage_gradients_reach_only_trainable_components(stage, model_and_processor, image):
    model, processor = model_and_processor
    trainable = STAGE_TRAINABLE[stage]
    apply_freeze(model, trainable)
    model.zero_grad(set_to_none=True)
    conv = {"messages": [{"role": "user", "content": "<image><audio>Say it"}, {"role": "assistant", "content": "red"}],
            "images": [image], "audios": [tone(0.5)]}
    batch = dict(processor.apply_chat_template(conv, add_generation_prompt=False, return_labels=True))
    labels = batch.pop("labels")
    batch["speech_codes"] = torch.randint(0, 64, (1, 4, 6))
    batch["speech_text_mask"] = labels != -100
    if stage != "stage3_speech":
        batch["labels"] = labels
    model(**batch).loss.backward()
    for name in COMPONENTS:
        params = [(q, p) for q, p in component_parameters(model, name)]
        got_grad = [q for q, p in params if p.grad is not None and p.grad.abs().sum() > 0]
        if name in trainable:
            assert got_grad, f"{stage}: {name} is trainable but got no gradient"
        else:
            assert not got_grad, f"{stage}: frozen {name} got gradients: {got_grad[:3]}"
            assert not any(p.requires_grad for _, p in params)


def test_param_groups_carry_per_component_rates(model_and_processor):
    model, _ = model_and_processor
    apply_freeze(model, ["audio_adapter", "llm"])
    groups = param_groups(model, 1e-4, {"audio_adapter": 1e-3}, weight_decay=0.1)
    rates = {(g["component"], g["weight_decay"]): g["lr"] for g in groups}
    assert rates[("audio_adapter", 0.1)] == 1e-3 and rates[("llm", 0.1)] == 1e-4
    assert rates[("llm", 0.0)] == 1e-4  # norms and biases: no decay
    assert {g["component"] for g in groups} == {"audio_adapter", "llm"}


def test_everything_frozen_and_missing_decoder_are_errors():
    model, _ = build_preset("tiny", seed=0)
    apply_freeze(model, [])
    with pytest.raises(ValueError, match="nothing to train"):
        param_groups(model, 1e-4, {}, 0.0)
    with pytest.raises(ValueError, match="no speech decoder"):
        apply_freeze(model, ["speech_decoder"])
