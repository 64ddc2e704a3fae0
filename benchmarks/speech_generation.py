"""Speed of the AR speech decoder at a tiny size on CPU.

Prints, for 10 s of speech at the FireFly codec's 21.53 frames/s (the 7B model) and at the
built-in codec's 86.13 frames/s (22050 / 256):

- the real-time factor (generation time / audio duration; target < 0.2), from wall and CPU time,
- the steps a second (the decoder's fixed-shape KV cache: every step attends over the whole
  capacity with a mask; the uncached reference path is gone, its role taken by the test that
  teacher-forced logits equal generated ones),
- the time to the first streamed chunk.

Random weights never choose to stop, so every run is held to exactly the requested length
(min_frames = max_frames). Run: `python benchmarks/speech_generation.py [--layers 4 ...]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from tqdm import tqdm

from nexus_o.inference.speech_stream import stream_codes
from nexus_o.models.sampling import SamplingConfig
from nexus_o.models.speech_decoder import SpeechDecoder
from nexus_o.models.speech_decoder_config import SpeechDecoderConfig

FRAME_RATES = {"firefly (7B)": 21.53, "built-in": 22050 / 256}
SAMPLING = SamplingConfig(temperature=0.8, top_k=50)


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median (wall, process CPU) time of `fn()` over `repeats` runs, in seconds.

    With one torch thread the CPU time is what the work costs on an idle core; the wall time
    also counts waiting for a core that other processes hold.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def first_chunk_time(decoder, hidden, frames: int, chunk_frames: int) -> float:
    start = time.perf_counter()
    stream = stream_codes(decoder, hidden, chunk_frames=chunk_frames, max_frames=frames, min_frames=frames,
                          sampling=SAMPLING)
    next(stream)
    elapsed = time.perf_counter() - start
    stream.close()
    return elapsed


def bench_size(layers: int, args) -> list[tuple]:
    """Time one decoder size at every frame rate; returns the table rows."""
    torch.manual_seed(0)
    cfg = SpeechDecoderConfig(num_layers=layers, hidden_size=args.hidden, num_heads=args.hidden // 32,
                              intermediate_size=4 * args.hidden, num_codebooks=8, codebook_size=1024,
                              codec_entries=1000, llm_hidden_size=64, max_steps=4096, alignment=args.alignment)
    decoder = SpeechDecoder.from_config(cfg).eval()
    hidden = torch.randn(1, args.text_tokens, cfg.llm_hidden_size)
    rows = []
    with torch.inference_mode():
        decoder.generate(hidden, max_frames=8, min_frames=8, sampling=SAMPLING)  # warm-up
        for name, rate in tqdm(FRAME_RATES.items(), desc=f"{layers} layers"):
            frames = round(args.seconds * rate)

            def run(frames=frames) -> None:
                out = decoder.generate(hidden, max_frames=frames, min_frames=frames, sampling=SAMPLING)
                assert int(out.lengths[0]) == frames

            cached = timed(run, args.repeats)
            first = statistics.median(first_chunk_time(decoder, hidden, frames, args.chunk_frames)
                                      for _ in range(args.repeats))
            params = sum(p.numel() for p in decoder.parameters()) / 1e6
            rows.append((f"{layers}L {params:.1f}M", name, rate, frames, cached, first))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--text-tokens", type=int, default=40)
    parser.add_argument("--chunk-frames", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--alignment", choices=["prefix", "stepwise", "pointer"], default="prefix")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on shared CPUs)")
    args = parser.parse_args()

    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    print(f"speech decoder: hidden {args.hidden}, K=8, C=1024, {args.text_tokens} text tokens, "
          f"alignment {args.alignment}, "
          f"{torch.get_num_threads()} thread(s), {SAMPLING}")
    rows = [row for layers in args.layers for row in bench_size(layers, args)]

    print(f"\n{'decoder':<10}{'codec':<14}{'frames/s':>9}{'frames':>8}{'time s':>10}{'RTF wall':>10}"
          f"{'RTF cpu':>9}{'steps/s':>10}{'first chunk':>13}")
    for size, name, rate, frames, (wall, cpu), first in rows:
        steps = (frames + 7) / wall
        print(f"{size:<10}{name:<14}{rate:>9.2f}{frames:>8}{wall:>10.3f}{wall / args.seconds:>10.3f}"
              f"{cpu / args.seconds:>9.3f}{steps:>10.0f}{first * 1000:>10.1f} ms")
    print(f"load average during the run: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    chunk_ms = {name: 1000 * args.chunk_frames / rate for name, rate in FRAME_RATES.items()}
    print(f"first chunk = {args.chunk_frames} frames + 7 delay steps "
          f"({', '.join(f'{n}: {ms:.0f} ms of audio' for n, ms in chunk_ms.items())}); "
          f"target: RTF < 0.2")


if __name__ == "__main__":
    main()
