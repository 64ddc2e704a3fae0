"""`compile_layers: true` trains with every LLM decoder layer compiled, to the losses of eager."""

import pytest

from nexus_o.train import run as train_run
from nexus_o.train.config import TrainConfig
from tests.train.test_train_cli import _config, _losses, _train


def test_compiled_layers_train_to_the_eager_losses(tmp_path, tiny_world, monkeypatch, one_thread):
    compiled = []

    def spy(model):
        compiled.append(train_run.compile_decoder_layers.__wrapped__(model))
        return compiled[-1]

    spy.__wrapped__ = train_run.compile_decoder_layers
    monkeypatch.setattr(train_run, "compile_decoder_layers", spy)
    phases = [{"name": "sft", "train": [str(tiny_world["vqa"])], "max_steps": 2}]
    common = {"gradient_checkpointing": True, "lm_loss": "chunked"}
    _train(_config(tmp_path / "eager", "stage2_sft", {"preset": "tiny"}, phases, **common))
    _train(_config(tmp_path / "compiled", "stage2_sft", {"preset": "tiny"}, phases, compile_layers=True, **common))
    assert compiled == [2]  # the tiny LLM's two layers, once
    eager, fused = _losses(tmp_path / "eager" / "out", "sft"), _losses(tmp_path / "compiled" / "out", "sft")
    assert len(eager) == len(fused) == 2
    assert fused == pytest.approx(eager, rel=1e-4)


def test_compile_layers_is_refused_under_sharding():
    base = {"stage": "stage2_sft", "model": {"preset": "tiny"}, "phases": [{"name": "p", "train": ["x.jsonl"]}],
            "output_dir": "out", "compile_layers": True}
    assert TrainConfig.model_validate(base).compile_layers
    for sharded in ({"deepspeed": "configs/deepspeed/zero3.json"}, {"fsdp": "full_shard auto_wrap"}):
        with pytest.raises(ValueError, match="compile_layers"):
            TrainConfig.model_validate({**base, **sharded})
