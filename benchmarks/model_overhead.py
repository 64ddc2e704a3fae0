"""Foundation benchmark: our forward vs bare Qwen2.5-VL, and audio-encoding throughput (tiny, CPU).

Prints
- the forward-time ratio of NexusOForConditionalGeneration to Qwen2_5_VLForConditionalGeneration
  holding the same weights on the same text+image batch (target: at most 1.05);
- audio-encoding throughput in seconds of audio a second: feature extraction (processor),
  encoder + adapter (model), and both together.
Run: python benchmarks/model_overhead.py [--reps 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration

from nexus_o.bundle.loading import build_preset


def _timed(fn, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--audio-seconds", type=float, default=240.0)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    model, processor = build_preset("tiny")
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.vl.save_pretrained(Path(tmp))
        bare = Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp).eval()

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)) for _ in range(4)]
    convs = [{"messages": [{"role": "user", "content": f"<image>What shape is number {i}?"}], "images": [img]}
             for i, img in enumerate(images)]
    batch = processor.apply_chat_template(convs)
    with torch.inference_mode():
        for _ in range(3):  # warm-up both
            model(**batch), bare(**batch)
        ours, theirs = [], []
        for _ in range(args.reps):  # interleaved so machine noise hits both alike
            ours += _timed(lambda: model(**batch), 1)
            theirs += _timed(lambda: bare(**batch), 1)
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"forward, text+image batch of 4 ({batch['input_ids'].shape[1]} tokens): "
          f"nexus-o {statistics.median(ours) * 1e3:.2f} ms, Qwen2.5-VL {statistics.median(theirs) * 1e3:.2f} ms")
    print(f"forward-time ratio nexus-o / Qwen2.5-VL: {ratio:.3f} (target <= 1.05)")

    clip_seconds = 30.0
    clips = [(0.1 * rng.standard_normal(int(clip_seconds * 16000))).astype(np.float32)
             for _ in range(int(args.audio_seconds // clip_seconds))]
    total = clip_seconds * len(clips)
    text = ["<|AUDIO|>"] * len(clips)
    start = time.perf_counter()
    feats = processor(text=text, audios=clips)
    t_feat = time.perf_counter() - start
    with torch.inference_mode():
        start = time.perf_counter()
        model.encode_audio(feats["input_features"], feats["feature_lens"], feats["audio_clip_ids"])
        t_enc = time.perf_counter() - start
    print(f"audio encoding ({total:.0f} s of audio in {len(clips)} clips): features {total / t_feat:.0f} s/s, "
          f"encoder+adapter {total / t_enc:.0f} s/s, together {total / (t_feat + t_enc):.0f} s of audio a second")


if __name__ == "__main__":
    main()
