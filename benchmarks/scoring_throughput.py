"""Scoring throughput of the evaluation metrics on 10,000 synthetic ref/hyp pairs.

Run: `python benchmarks/scoring_throughput.py [--pairs N]`. Sentences are generated with a fixed
seed (English with spelled numbers and contractions, Mandarin mixing traditional and simplified
characters), hypotheses are the references with random substitutions, deletions and insertions,
so the numbers are comparable across runs. Prints utterances a second per metric and each metric's
speed relative to `wer`, which is steadier than absolute figures on a shared machine.
"""

from __future__ import annotations

import argparse
import random
import time

from tqdm import tqdm

from nexus_o.eval.metrics import bleu, cer, normalize_en, normalize_zh, sqa_accuracy, wer

EN_WORDS = (
    "the a cat dog sat on mat red blue green house river twenty one three hundred don't can't "
    "we're colour honour mister doctor walked quickly slowly under over seven forty five apples "
    "music yesterday morning train station open closed window it's they'll Paris London"
).split()
ZH_CHARS = "我你他们的是在有个这那说国會会來来時时為为學学開开關关天气很好今明北京上海飞機机场"


def _perturb(units: list[str], rng: random.Random, vocab: list[str]) -> list[str]:
    """Apply ~10 % substitutions, ~5 % deletions, ~5 % insertions."""
    out = []
    for unit in units:
        roll = rng.random()
        if roll < 0.10:
            out.append(rng.choice(vocab))
        elif roll < 0.15:
            continue
        else:
            out.append(unit)
        if rng.random() < 0.05:
            out.append(rng.choice(vocab))
    return out


def make_en(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    refs, hyps = [], []
    for _ in range(n):
        words = [rng.choice(EN_WORDS) for _ in range(rng.randint(5, 20))]
        refs.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", ","]))
        hyps.append(" ".join(_perturb(words, rng, EN_WORDS)))
    return refs, hyps


def make_zh(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    chars = list(ZH_CHARS)
    refs, hyps = [], []
    for _ in range(n):
        sent = [rng.choice(chars) for _ in range(rng.randint(8, 30))]
        refs.append("".join(sent) + rng.choice(["。", "？", "！"]))
        hyps.append("".join(_perturb(sent, rng, chars)))
    return refs, hyps


def make_sqa(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    refs, hyps = [], []
    for _ in range(n):
        answers = rng.sample(EN_WORDS, 2)
        refs.append(" | ".join(answers))
        words = [rng.choice(EN_WORDS) for _ in range(rng.randint(5, 25))]
        if rng.random() < 0.6:
            words.insert(rng.randrange(len(words) + 1), answers[0])
        hyps.append("The answer is " + " ".join(words) + ".")
    return refs, hyps


class _Timed:
    """Stand-in result for rows that only time a step (no score)."""

    def __init__(self, outputs: list[str]) -> None:
        self.score = float("nan")
        self.outputs = outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(0)
    en, zh, qa = make_en(args.pairs, rng), make_zh(args.pairs, rng), make_sqa(args.pairs, rng)
    cases = [
        ("wer", lambda: wer(*en)),
        ("wer seed-tts", lambda: wer(*en, protocol="seed-tts")),
        ("cer", lambda: cer(*zh)),
        ("cer seed-tts", lambda: cer(*zh, protocol="seed-tts")),
        ("bleu en (13a)", lambda: bleu(*en, "en")),
        ("bleu zh", lambda: bleu(*zh, "zh")),
        ("sqa", lambda: sqa_accuracy(*qa)),
        # where the time goes: the normalisers alone, on refs + hyps
        ("normalize_en", lambda: _Timed([normalize_en(t) for t in en[0] + en[1]])),
        ("normalize_zh", lambda: _Timed([normalize_zh(t) for t in zh[0] + zh[1]])),
    ]
    wer(en[0][:10], en[1][:10])  # build the normalisers once, outside the timing
    cer(zh[0][:10], zh[1][:10])
    rows = []
    for name, run in tqdm(cases, desc="scoring", unit="metric"):
        start = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - start
        rows.append((name, seconds, args.pairs / seconds, result.score))
    base = rows[0][2]
    print(f"\n{args.pairs} ref/hyp pairs per row; utt/s = pairs scored a second")
    print(f"{'metric':<15}{'seconds':>9}{'utt/s':>11}{'vs wer':>8}{'score':>10}")
    for name, seconds, rate, score in rows:
        shown = "-" if score != score else f"{score:.4f}"  # NaN: timing-only row
        print(f"{name:<15}{seconds:>9.2f}{rate:>11.0f}{rate / base:>8.2f}{shown:>10}")


if __name__ == "__main__":
    main()
