#!/usr/bin/env python3
"""Host time to turn reply tokens into text pieces: `TextPieces` (incremental decoding) beside
decoding the whole reply again for every token (what it did before), on the tiny tokenizer.

Prints microseconds a token over replies of each length; per row of a batch, the host pays this
at every decoding step while the GPU waits.

    python benchmarks/text_pieces.py [--lengths 64,256,512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time


def whole_reply_pieces(tokenizer, ids: list[int]) -> str:
    """The previous method: decode the reply so far at every token, hand out what is new."""
    text = ""
    for n in range(1, len(ids) + 1):
        now = tokenizer.decode(ids[:n], skip_special_tokens=True)
        if not now.endswith("\ufffd"):
            text = now
    return text


def incremental_pieces(tokenizer, ids: list[int]) -> str:
    from nexus_o.inference.chat import TextPieces

    pieces = TextPieces(tokenizer)
    for token in ids:
        pieces.push(token)
    return pieces.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="64,256,512", help="reply lengths in tokens")
    parser.add_argument("--repeats", type=int, default=5, help="the fastest of this many runs is kept")
    args = parser.parse_args()
    from nexus_o.bundle.loading import build_preset

    tokenizer = build_preset("tiny", seed=0)[1].tokenizer
    text = " ".join(["the red square is next to the blue circle, and the number seven"] * 100)
    all_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    print(f"{'tokens':>7} {'whole reply, us/token':>22} {'TextPieces, us/token':>21} {'ratio':>6}")
    for length in [int(n) for n in args.lengths.split(",")]:
        ids = all_ids[:length]
        times = {}
        for name, fn in (("whole", whole_reply_pieces), ("incremental", incremental_pieces)):
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                out = fn(tokenizer, ids)
                best = min(best, time.perf_counter() - start)
            times[name] = 1e6 * best / len(ids)
            if out != tokenizer.decode(ids, skip_special_tokens=True):
                raise RuntimeError(f"{name}: the pieces do not join to the decoded reply")
        print(f"{len(ids):>7} {times['whole']:>22.1f} {times['incremental']:>21.1f} "
              f"{times['whole'] / times['incremental']:>6.1f}")


if __name__ == "__main__":
    main()
