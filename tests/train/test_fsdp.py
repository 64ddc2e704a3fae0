"""FSDP2 on two CPU processes (gloo) through `nexus-o train`: the ranks agree, the checkpoint resumes.

Each rank runs the real CLI; a wrapper around `NexusOTrainer.train` records, after training,
whether the parameters were sharded (DTensors) and a fingerprint of the gathered full weights.
accelerate enables FSDP only on accelerators (on CPU it falls back to DDP without a word), so
the wrapper lets its FSDP plugin through on CPU; everything else is the shipped path.
It also counts the calls of the chunked LM loss: `lm_loss: chunked` runs under FSDP2 (in the LM
head's forward, inside the root module's, where the head's weight is unsharded) with the same
losses and gradient norms as transformers' loss.
"""

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from tests.train.conftest import free_port, run_ranks, write_mixed_manifest

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = r'''
import hashlib, json, os, sys
import torch
from nexus_o.models import lm_loss
from nexus_o.train import trainer as trainer_module
from nexus_o.cli import app

original, chunked = trainer_module.NexusOTrainer.train, [0]
linear_cross_entropy = lm_loss.linear_cross_entropy

def counted(*args, **kwargs):
    chunked[0] += 1
    return linear_cross_entropy(*args, **kwargs)

lm_loss.linear_cross_entropy = counted

def train(self, *args, **kwargs):
    out = original(self, *args, **kwargs)
    digest, sharded = hashlib.sha256(), False
    for name, value in self.model.state_dict().items():
        if hasattr(value, "full_tensor"):  # a DTensor: FSDP2 shards it; gather the whole tensor
            sharded, value = True, value.full_tensor()
        digest.update(name.encode() + value.detach().float().cpu().numpy().tobytes())
    rank = int(os.environ["RANK"])
    path = os.path.join(self.args.output_dir, f"rank{rank}.json")
    with open(path, "w") as f:
        json.dump({"sharded": sharded, "weights": digest.hexdigest(), "step": self.state.global_step,
                   "chunked_calls": chunked[0]}, f)
    return out

trainer_module.NexusOTrainer.train = train

# accelerate turns FSDP on only for accelerator devices (a CPU run silently becomes plain DDP);
# the sharding itself (torch's fully_shard over a gloo mesh) works on CPU, so let it through.
from accelerate.state import AcceleratorState, DistributedType
state_init = AcceleratorState.__init__

def init(self, *args, fsdp_plugin=None, **kwargs):
    state_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type, self.fsdp_plugin = DistributedType.FSDP, fsdp_plugin

AcceleratorState.__init__ = init
import nexus_o.train.run as run_module
run_module.NexusOTrainer = trainer_module.NexusOTrainer
app(sys.argv[1:], standalone_mode=True)
'''


def _run(tmp_path: Path, name: str, manifest: Path, *overrides: str) -> Path:
    out = tmp_path / name
    cfg = {"stage": "stage2_sft", "model": {"preset": "tiny"}, "output_dir": str(out),
           "phases": [{"name": "sft", "train": [str(manifest)], "max_steps": 4}], "batch_size": 1,
           "logging_steps": 1, "save_steps": 2, "trainable": ["audio_adapter", "vision_adapter", "llm", "lm_head"],
           "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
           "fsdp": "full_shard auto_wrap", "fsdp_config": str(ROOT / "configs" / "fsdp.json")}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    wrapper = tmp_path / "fsdp_wrapper.py"
    wrapper.write_text(WRAPPER)
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = run_ranks([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                      str(free_port()), str(wrapper), "train", "--config", str(path), *overrides],
                     env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _ranks(out: Path) -> list[dict]:
    return [json.loads((out / "sft" / f"rank{r}.json").read_text()) for r in (0, 1)]


def _losses(out: Path, key: str = "loss") -> list[float]:
    return [h[key] for h in json.loads((out / "sft" / "log_history.json").read_text()) if "loss" in h]


@pytest.fixture(scope="module")
def whole(tmp_path_factory, tiny_world) -> Path:
    """Four steps in one go, transformers' LM loss, alternating audio and image rows."""
    tmp_path = tmp_path_factory.mktemp("fsdp_whole")
    return _run(tmp_path, "whole", write_mixed_manifest(tmp_path, tiny_world))


def test_fsdp2_two_processes_agree_and_resume(whole, tmp_path, tiny_world):
    manifest = write_mixed_manifest(tmp_path, tiny_world)
    ranks = _ranks(whole)
    assert all(r["sharded"] for r in ranks), "FSDP2 did not shard the parameters"
    assert ranks[0]["weights"] == ranks[1]["weights"] and ranks[0]["step"] == 4
    assert (whole / "final" / "model.safetensors").is_file()

    part = _run(tmp_path, "part", manifest, "stop_after_steps=2")
    assert (part / "sft" / "checkpoint-2" / "checkpoint_complete.json").is_file()
    _run(tmp_path, "part", manifest, "resume=auto")
    resumed = _ranks(part)
    assert resumed[0]["weights"] == resumed[1]["weights"] and resumed[0]["step"] == 4
    assert resumed[0]["weights"] == ranks[0]["weights"]  # stopped and resumed = trained in one go
    assert _losses(part) == pytest.approx(_losses(whole), rel=1e-4, abs=1e-5)


def test_fsdp2_chunked_lm_loss_equals_transformers_loss(whole, tmp_path, tiny_world):
    chunked = _run(tmp_path, "chunked", write_mixed_manifest(tmp_path, tiny_world), "lm_loss=chunked")
    assert [r["chunked_calls"] for r in _ranks(chunked)] == [4, 4]
    assert [r["chunked_calls"] for r in _ranks(whole)] == [0, 0]
    assert all(r["sharded"] for r in _ranks(chunked))
    # lr 1e-3 from step 1: the later losses follow the head's updates, so its sharded gradient must be right
    assert _losses(chunked) == pytest.approx(_losses(whole), rel=1e-4)
    assert _losses(chunked, "grad_norm") == pytest.approx(_losses(whole, "grad_norm"), rel=1e-3)
