"""Alignment metrics: one shared pass for all seven vs each metric on its own (the reference way).

For N x D random features this prints the time of ``score_all`` (kernels and neighbour lists
computed once, HSIC from kernel sums) against the time of computing each metric on its own from
scratch as the platonic-rep code does (``reference_metric``: preprocessing, kernels, argsort,
dense centring products per call), per metric and in total, and their ratio. It then does the
same for a stack of layers scored at once against one [N, D] feature set (``score_layers``).

The reference way shares no work across layers, so for L layers it costs L times one layer;
to keep the run to a few minutes that is how it is counted by default (``--reference-layers 0``),
and ``--reference-layers K`` times it on K of the layers instead (then scaled by L / K). The
output says which. Fast paths take the best of ``--repeats`` runs, the reference way one.

    python benchmarks/alignment_metrics.py [--n 4096] [--d 1024] [--layers 8] [--reference-layers 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from nexus_o.eval.alignment import METRIC_NAMES, reference_metric, score_all, score_layers


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    runs = [timed(fn) for _ in range(repeats)]
    return min(t for t, _ in runs), runs[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="samples")
    parser.add_argument("--d", type=int, default=1024, help="feature dims")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument(
        "--reference-layers", type=int, default=0, help="layers to time the reference way on (0: L x one layer)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="repeats of the fast paths (best is kept)")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(args.n, args.d, generator=gen)
    b = torch.randn(args.n, args.d, generator=gen)
    print(f"N={args.n} D={args.d} topk={args.topk} float32, {torch.get_num_threads()} threads")

    score_all(a[:256], b[:256], args.topk)  # warm-up: first calls pay one-off library setup
    fast_time, fast = best_of(lambda: score_all(a, b, args.topk), args.repeats)
    ref_times, ref = {}, {}
    for name in tqdm(METRIC_NAMES, desc="reference way, one layer", leave=False):
        ref_times[name], ref[name] = timed(lambda name=name: reference_metric(name, a, b, args.topk))
    ref_total = sum(ref_times.values())

    print("\none layer: each metric on its own from scratch (reference way)")
    for name in METRIC_NAMES:
        print(f"  {name:<18} {ref_times[name]:8.2f} s   value {ref[name]:.6f}  (shared pass {fast[name]:.6f})")
    print(f"  {'total':<18} {ref_total:8.2f} s")
    print(f"  all seven in one shared pass: {fast_time:.2f} s  ->  {ref_total / fast_time:.1f}x faster")
    # The reference's CKA alone does O(N^3) centring products; this ratio shows what sharing buys
    # without it (the shared pass still includes its own CKA, so the ratio is an underestimate).
    no_cka = ref_total - ref_times["cka"]
    print(f"  reference way without cka: {no_cka:.2f} s  ->  {no_cka / fast_time:.1f}x the shared pass")
    gap = max(abs(fast[k] - ref[k]) for k in METRIC_NAMES)
    print(f"  largest |shared - reference| over the seven values: {gap:.2e}")

    layers = torch.randn(args.layers, args.n, args.d, generator=gen)
    layers_time, _ = best_of(lambda: score_layers(layers, b, args.topk), args.repeats)
    measured = min(args.reference_layers, args.layers)
    if measured > 0:
        ref_layers_time = 0.0
        for i in tqdm(range(measured), desc="reference way, layers", leave=False):
            for name in METRIC_NAMES:
                ref_layers_time += timed(lambda name=name, i=i: reference_metric(name, layers[i], b, args.topk))[0]
        ref_layers_est = ref_layers_time * args.layers / measured
        how = "" if measured == args.layers else f" (timed on {measured} layers, x{args.layers / measured:g})"
    else:
        ref_layers_est = ref_total * args.layers
        how = f" ({args.layers} x the one-layer time above)"
    print(f"\n{args.layers} layers [L, N, D] against one [N, D]")
    print(f"  reference way, every metric and layer on its own: {ref_layers_est:.2f} s{how}")
    print(f"  score_layers, all layers at once: {layers_time:.2f} s  ->  {ref_layers_est / layers_time:.1f}x faster")
    print(f"  per layer: {layers_time / args.layers:.2f} s batched vs {fast_time:.2f} s for a single score_all")


if __name__ == "__main__":
    main()
