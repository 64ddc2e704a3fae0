"""DeepSpeed ZeRO-3 on two CPU processes through `nexus-o train` (skipped without deepspeed).

The manifest alternates audio and image rows, so in some steps the two ranks hold different
modalities. ZeRO-3 records the module order of one step, checks it is the same on every rank and
prefetches later steps by it: ranks that called the encoders in different orders or counts used
to hang (NCCL) or abort on a collective size mismatch (gloo) from the third step on. Each rank
records the modalities of its steps, so the test knows the mixed case was exercised.

`lm_loss: chunked` runs under ZeRO-3 too (the loss is computed in the LM head's forward, where
ZeRO-3 gathers the head's weight): the same losses and gradient norms as transformers' loss.
"""

import json
import os
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.train.conftest import free_port, run_ranks, write_mixed_manifest

pytest.importorskip("deepspeed")
ROOT = Path(__file__).resolve().parents[2]
WRAPPER = r'''
import json, os, sys
from nexus_o.models import lm_loss
from nexus_o.train.trainer import NexusOTrainer
from nexus_o.cli import app

original, seen, chunked = NexusOTrainer.training_step, [], [0]
linear_cross_entropy = lm_loss.linear_cross_entropy

def counted(*args, **kwargs):  # the chunked loss ran (no silent fallback to transformers' loss)
    chunked[0] += 1
    return linear_cross_entropy(*args, **kwargs)

def training_step(self, model, inputs, *args, **kwargs):
    seen.append(sorted(m for m, key in (("audio", "input_features"), ("image", "pixel_values"))
                       if inputs.get(key) is not None))
    out = original(self, model, inputs, *args, **kwargs)
    with open(os.path.join(self.args.output_dir, f"rank{os.environ['RANK']}.json"), "w") as f:
        json.dump({"modalities": seen, "chunked_calls": chunked[0]}, f)
    return out

lm_loss.linear_cross_entropy = counted

NexusOTrainer.training_step = training_step
app(sys.argv[1:], standalone_mode=True)
'''


def _train(tmp_path: Path, manifest: Path, steps: int, lm_loss: str = "hf") -> Path:
    """Run `nexus-o train` on two ranks under configs/deepspeed/zero3.json; returns output_dir."""
    out = tmp_path / "out"
    cfg = {"lm_loss": lm_loss, "stage": "stage2_sft", "model": {"preset": "tiny"}, "output_dir": str(out),
           "phases": [{"name": "sft", "train": [str(manifest)], "max_steps": steps}], "batch_size": 1,
           "logging_steps": 1, "save_steps": 2, "trainable": ["audio_adapter", "vision_adapter", "llm", "lm_head"],
           "deepspeed": str(ROOT / "configs" / "deepspeed" / "zero3.json")}
    path = tmp_path / "zero3.yaml"
    path.write_text(yaml.safe_dump(cfg))
    wrapper = tmp_path / "ds_wrapper.py"
    wrapper.write_text(WRAPPER)
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = run_ranks([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                      "--master_port", str(free_port()), str(wrapper), "train", "--config", str(path)],
                     env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _ranks(out: Path) -> list[dict]:
    return [json.loads((out / "sft" / f"rank{r}.json").read_text()) for r in (0, 1)]


def _logged(out: Path, key: str) -> list[float]:
    return [h[key] for h in json.loads((out / "sft" / "log_history.json").read_text()) if "loss" in h]


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory, tiny_world) -> Path:
    """Four steps with transformers' LM loss on alternating audio and image rows."""
    tmp_path = tmp_path_factory.mktemp("zero3_hf")
    return _train(tmp_path, write_mixed_manifest(tmp_path, tiny_world), steps=4)


def test_zero3_ranks_with_different_modalities_train_and_save_whole_weights(hf_run):
    out = hf_run
    seen = [rank["modalities"] for rank in _ranks(out)]
    assert len(seen[0]) == len(seen[1]) == 4
    assert any(a != b for a, b in zip(*seen)), f"the ranks never held different modalities: {seen}"
    for rank in seen:
        assert {"audio", "image"} <= {m for step in rank for m in step}, seen
    assert (out / "sft" / "checkpoint-2" / "global_step2").is_dir()  # DeepSpeed's own partitioned state
    history = json.loads((out / "sft" / "log_history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3, 4]
    # ZeRO-3 parameters are empty placeholders outside forward: the final model must be gathered
    final = load_file(out / "final" / "model.safetensors")
    ckpt = load_file(out / "sft" / "checkpoint-4" / "model.safetensors")
    assert final.keys() == ckpt.keys()
    for key, value in final.items():
        assert value.numel() > 0 and torch.equal(value, ckpt[key]), key


def test_zero3_chunked_lm_loss_equals_transformers_loss(hf_run, tmp_path, tiny_world):
    out = _train(tmp_path, write_mixed_manifest(tmp_path, tiny_world), steps=4, lm_loss="chunked")
    assert [rank["chunked_calls"] for rank in _ranks(out)] == [4, 4]
    assert [rank["chunked_calls"] for rank in _ranks(hf_run)] == [0, 0]
    # same batches, same updates: the head's gradient reached its ZeRO-3 partitions, or the later
    # steps' losses and every step's gradient norm would differ
    assert _logged(out, "loss") == pytest.approx(_logged(hf_run, "loss"), rel=1e-4)
    assert _logged(out, "grad_norm") == pytest.approx(_logged(hf_run, "grad_norm"), rel=1e-3)
