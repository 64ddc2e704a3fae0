#!/usr/bin/env python3
"""Memory per GPU for each training stage of a preset, sharded over N GPUs (ZeRO-3 or FSDP2).

Model states are counted exactly from the preset's architecture (built on the meta device: no
weights, no memory) and each stage's freeze plan (`STAGE_TRAINABLE`):
  ZeRO-3, bf16 (configs/deepspeed/zero3.json): bf16 weights (2 bytes a parameter, frozen ones
    too), bf16 gradients (2) and fp32 master weights + AdamW moments (12) for trainable ones,
    all partitioned over N; plus the gathered working set, two decoder layers in bf16.
  FSDP2 (configs/fsdp.json, Trainer bf16 = autocast over fp32 weights): fp32 weights (4 a
    parameter), fp32 gradients (4) and AdamW moments (8) for trainable ones, sharded over N; plus
    two unsharded decoder layers in bf16.
Activations are not sharded: each GPU holds those of its own micro-batch. They come from the GPU
benchmark's measured stage-2 peak (`--measured`, benchmarks/gpu.py's JSON: peak of the
`baseline` variant, pure bf16 on one GPU, minus that run's model states), for that run's micro
batch (4 x 2048 tokens, full activation checkpointing). Stage 1 backpropagates through the same
LLM, so the same figure is used for it (an estimate); stage 3 trains the speech decoder alone,
and the LLM runs forward only, so its activations are not kept (not measured).

    python benchmarks/stage_memory.py [--preset nexus-o-7b] [--gpus 1,8,16,64] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "docs" / "results" / "gpu-7b-h200-2026-12-04-run2.json"
GIB = 2**30


def stage_counts(preset: str) -> tuple[dict[str, tuple[int, int]], int]:
    """({stage: (trainable, frozen) parameters}, parameters of the largest LLM decoder layer)."""
    from nexus_o.bundle.presets import preset_config
    from nexus_o.models.modeling import NexusOForConditionalGeneration
    from nexus_o.train.components import apply_freeze
    from nexus_o.train.config import STAGE_TRAINABLE

    with torch.device("meta"):
        model = NexusOForConditionalGeneration(preset_config(preset))
    layer = max(sum(p.numel() for p in block.parameters()) for block in model.vl.model.language_model.layers)
    counts = {}
    for stage, trainable in STAGE_TRAINABLE.items():
        per_component = apply_freeze(model, trainable)
        train = sum(t for t, _ in per_component.values())
        counts[stage] = (train, sum(n for _, n in per_component.values()) - train)
    return counts, layer


def states_bytes(trainable: int, frozen: int, layer: int, gpus: int, scheme: str) -> float:
    """Model states per GPU (see the module doc)."""
    if scheme == "zero3":
        return (2 * (trainable + frozen) + 14 * trainable) / gpus + 2 * 2 * layer
    return (4 * (trainable + frozen) + 12 * trainable) / gpus + 2 * 2 * layer


def measured_activations(path: Path, preset: str) -> tuple[float | None, str]:
    """(activation + workspace bytes of the measured stage-2 step, where it comes from)."""
    if preset != "nexus-o-7b" or not path.exists():
        return None, "no measured run for this preset"
    run = json.loads(path.read_text())["sections"]
    baseline = run["train"]["variants"]["baseline"]
    params = run["build"]["params"]
    trainable = sum(params[c] for c in run["train"]["trainable"])
    states = 2 * sum(params.values()) + 2 * trainable + 4 * trainable  # bf16 weights, grads, AdamW moments
    inputs = run["train"]["inputs"]
    return (baseline["peak_memory_gib"] * GIB - states,
            f"{path.name}: stage-2 peak {baseline['peak_memory_gib']:.1f} GiB at {inputs['batch']} x "
            f"{inputs['length']} tokens, full checkpointing, minus its bf16 model states")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="nexus-o-7b")
    parser.add_argument("--gpus", default="1,8,16,64", help="GPU counts to shard over")
    parser.add_argument("--measured", type=Path, default=MEASURED, help="benchmarks/gpu.py results JSON")
    parser.add_argument("--json", action="store_true", help="print the table as one JSON line, last")
    args = parser.parse_args()
    gpus = [int(n) for n in args.gpus.split(",")]
    counts, layer = stage_counts(args.preset)
    activations, source = measured_activations(args.measured, args.preset)
    print(f"{args.preset}: model states per GPU (exact) + activations ({source})")
    table = {}
    for stage, (trainable, frozen) in counts.items():
        act = None if stage == "stage3_speech" else activations
        row = {"trainable_params": trainable, "frozen_params": frozen,
               "activations_gib": None if act is None else act / GIB}
        for scheme in ("zero3", "fsdp2"):
            row[scheme] = {n: (states_bytes(trainable, frozen, layer, n, scheme) + (act or 0)) / GIB for n in gpus}
        table[stage] = row
        cells = "  ".join(f"{n:>3} GPUs: ZeRO-3 {row['zero3'][n]:6.1f}  FSDP2 {row['fsdp2'][n]:6.1f}" for n in gpus)
        extra = "(+ activations not measured)" if act is None else f"(incl. {act / GIB:.1f} GiB activations)"
        print(f"{stage:<14} trains {trainable / 1e9:5.2f} B of {(trainable + frozen) / 1e9:5.2f} B  GiB/GPU  "
              f"{cells}  {extra}")
    if args.json:
        print(json.dumps(table))


if __name__ == "__main__":
    main()
