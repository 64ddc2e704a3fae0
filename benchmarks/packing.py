"""Sequence packing on a tiny-world stage-2 batch mix (tiny preset, CPU): padding and train tokens/s.

    python benchmarks/packing.py [--world DIR] [--batch 16] [--batches 4] [--pack-to 256]

--world: a built tiny world (`nexus-o synth tiny-world --out DIR`); without it a small one is built
in a temporary folder first. The same batches of stage2_train.jsonl samples (image + spoken or
written question -> answer, some ASR) go through the padded collator (the default) and the packed
one (`pack_to`, rows of at most that many tokens; `train/packing.py`). Prints per variant: rows x
length of the LLM input, the padding fraction (pad positions / all positions the LLM runs on),
collation ms a batch, and train tokens/s = real (non-pad) tokens / seconds of a stage-2 step
(forward, backward, AdamW on the stage table's trainable parts; the frozen Whisper's outputs are
cached as configs/tiny/stage2_sft.yaml does, and warmed before timing). The one-row layout that
flash attention gets has no padding at all; on CPU (sdpa, a dense block-diagonal mask) it is not timed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from nexus_o.bundle.loading import build_preset
from nexus_o.data.dataset import load_manifest_dataset
from nexus_o.train.collate import TrainCollator
from nexus_o.train.components import apply_freeze, param_groups
from nexus_o.train.config import STAGE_TRAINABLE
from nexus_o.train.packing import RopeGrid, SamplePacker


def batches_of(world: Path, batch: int, count: int, seed: int = 0) -> list[list[dict]]:
    rows = list(load_manifest_dataset(world / "stage2_train.jsonl"))
    random.Random(seed).shuffle(rows)
    if len(rows) < batch * count:
        raise SystemExit(f"{world} has {len(rows)} stage-2 samples, fewer than {batch} x {count}")
    return [rows[i * batch:(i + 1) * batch] for i in range(count)]


def collate_all(collator: TrainCollator, batches: list[list[dict]]) -> tuple[list[dict], float]:
    start = time.perf_counter()
    out = [collator(rows) for rows in batches]
    return out, (time.perf_counter() - start) / len(batches)


def train_pass(model, optimizer, batches: list[dict]) -> float:
    start = time.perf_counter()
    for batch in batches:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", type=Path)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--pack-to", type=int, default=256)
    parser.add_argument("--reps", type=int, default=2, help="timed passes over the batches (median kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="packing-world-") as tmp:
        world = args.world
        if world is None:
            from nexus_o.synth.tiny_world import build_tiny_world

            world = Path(tmp)
            print(f"building a small tiny world in {world} ...")
            build_tiny_world(world, seed=0, size="small", progress=False)
        batches = batches_of(world, args.batch, args.batches)
        model, processor = build_preset("tiny", seed=0)
        apply_freeze(model, STAGE_TRAINABLE["stage2_sft"])
        model.enable_audio_encoder_cache()
        model.train()
        optimizer = torch.optim.AdamW(param_groups(model, 1e-4, {}, 0.0), lr=1e-4)
        packer = SamplePacker(RopeGrid.from_config(model.config), processor.tokenizer.pad_token_id, args.pack_to)
        one_row = SamplePacker(packer.rope, packer.pad_token_id, None)
        variants = {"padded": TrainCollator(processor),
                    f"packed (pack_to={args.pack_to})": TrainCollator(processor, packer=packer),
                    "one row (flash layout)": TrainCollator(processor, packer=one_row)}
        print(f"{args.batches} batches of {args.batch} stage-2 samples from {world}; "
              f"torch threads {torch.get_num_threads()}")
        rates, real = {}, None
        for name, collator in variants.items():
            collated, collate_s = collate_all(collator, batches)
            if real is None:  # the same samples in every variant: the padded batches' mask counts them
                real = sum(int(b["attention_mask"].sum()) for b in collated)
            slots = sum(b["input_ids"].numel() for b in collated)
            shapes = ", ".join(f"{b['input_ids'].shape[0]}x{b['input_ids'].shape[1]}" for b in collated[:3])
            line = (f"{name:24s} rows x length {shapes}, ...  padding {100 * (1 - real / slots):5.1f}%  "
                    f"collate {1000 * collate_s:6.1f} ms/batch")
            if name.startswith("one row"):
                print(line + "  (not timed on CPU)")
                continue
            train_pass(model, optimizer, collated)  # warm-up: audio cache, allocator
            seconds = statistics.median(train_pass(model, optimizer, collated) for _ in range(args.reps))
            rates[name] = real / seconds
            print(line + f"  train {rates[name]:7.0f} real tokens/s  ({seconds / len(collated):.3f} s/step)")
        padded, packed = rates.values()
        print(f"packed / padded train tokens/s: {packed / padded:.2f}x")


if __name__ == "__main__":
    main()
