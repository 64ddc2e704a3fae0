"""Throughput of the text filters (nexus_o.synth.filters), target >= 100,000 texts a second.

Runs `check_text` over a synthetic, seeded corpus of English and Chinese texts of realistic
lengths, 10 % of which carry a URL, a path, LaTeX or many digits, then the whole `filter_file`
path (read, decode, filter, write JSONL). Prints texts a second and the share of each reason.

    python benchmarks/synth_filters.py [--texts 200000]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from nexus_o.synth.filters import check_text, filter_file

TARGET = 100_000
EN_WORDS = [
    "the",
    "a",
    "square",
    "circle",
    "red",
    "blue",
    "green",
    "is",
    "are",
    "what",
    "which",
    "colour",
    "how",
    "many",
    "there",
    "next",
    "to",
    "above",
    "below",
    "small",
    "large",
    "triangle",
    "and",
    "of",
    "in",
    "on",
    "picture",
    "shows",
    "we",
    "see",
    "you",
    "can",
    "tell",
    "me",
    "please",
    "count",
]
ZH_CHARS = "正方形圆三角红蓝绿色是什么有几个在旁边上面下面大小图片里我们你能告诉请数一数的了吗"
NOISE = (
    "see https://example.com/a",
    "open /usr/local/bin/tool",
    "solve $x^2 + 1$",
    "call 555-0123-4567 now",
    "edit C:\\data\\x.txt",
    r"\frac{1}{2}",
)


def corpus(n: int, seed: int = 0) -> list[str]:
    """n texts: 60 % English (5-60 words), 30 % Chinese (8-80 characters), 10 % with noise."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.6:
            text = " ".join(rng.choices(EN_WORDS, k=rng.randint(5, 60))).capitalize() + "?"
        elif kind < 0.9:
            text = "".join(rng.choices(ZH_CHARS, k=rng.randint(8, 80))) + "。"
        else:
            text = " ".join(rng.choices(EN_WORDS, k=rng.randint(3, 20))) + " " + rng.choice(NOISE)
        texts.append(text)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200_000)
    args = parser.parse_args()
    texts = corpus(args.texts)
    mean_chars = sum(map(len, texts)) / len(texts)

    # Best of 3, on CPU time as well as wall time: on a shared machine the wall clock also
    # counts the time other processes hold the core.
    best_wall = best_cpu = float("inf")
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        reasons = Counter(check_text(t) for t in texts)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    print(
        f"check_text on one core: {len(texts)} texts, mean {mean_chars:.0f} chars "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    for label, seconds in (("CPU time", best_cpu), ("wall time", best_wall)):
        rate = len(texts) / seconds
        print(f"  {label}: {rate:,.0f} texts/s = {rate / TARGET:.2f}x the 100k/s target")
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {reason or 'kept'}: {100 * count / len(texts):.1f}%")

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "texts.txt"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        cpu = time.process_time()
        filter_file(source, Path(tmp) / "kept.jsonl", Path(tmp) / "rejects.jsonl")
        elapsed = time.process_time() - cpu
    print(f"filter_file (read + filter + JSONL write), CPU time: {len(texts) / elapsed:,.0f} texts/s")


if __name__ == "__main__":
    main()
