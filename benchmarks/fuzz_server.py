"""Fuzzing benchmark: hostile requests against the tiny preset behind the OpenAI-compatible server.

Starts the server in this process on a loopback port (the speaking tiny preset, as
benchmarks/serving.py builds it), sends `--requests` malformed requests from
`nexus_o.serve.fuzz.hostile_requests` one at a time and prints the counts: tried, 2xx, 4xx,
5xx, hangs (answers later than the server's request timeout, or none), the slowest answer,
resident memory before and after, /health afterwards, then every failure by name.

    python benchmarks/fuzz_server.py [--requests 300] [--seed 0] [--timeout 10] [--budget SECONDS]
                                      [--exclude NAME-PART]
"""

from __future__ import annotations

import argparse
import logging
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="the server's request timeout, seconds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--budget", type=float, default=None, help="stop sending after this many seconds")
    parser.add_argument("--exclude", default=None, help="leave out the cases whose name contains this text")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("nexus_o.serve").setLevel(logging.CRITICAL)  # 500s are counted, not printed

    from serving import speaking_tiny

    from nexus_o.serve.app import create_app
    from nexus_o.serve.fuzz import hostile_requests, run_fuzz
    from nexus_o.serve.server import BackgroundServer
    from nexus_o.serve.settings import ServeSettings

    omni, origin = speaking_tiny()
    settings = ServeSettings(model_name="tiny", request_timeout=args.timeout, max_tokens=16, max_speech_seconds=1.0)
    cases = hostile_requests(args.requests, seed=args.seed, model="tiny")
    if args.exclude:
        cases = [case for case in cases if args.exclude not in case.name]
    with BackgroundServer(create_app(omni, settings)) as server:
        start = time.perf_counter()
        report = run_fuzz(server.url, cases, timeout=args.timeout, budget=args.budget)
        took = time.perf_counter() - start
    print(f"speech: {origin}; {len(cases)} requests, seed {args.seed}, request timeout {args.timeout:g} s, "
          f"{took:.1f} s in all")
    print(report.format())
    print("statuses: " + ", ".join(f"{status} x{n}" for status, n in sorted(report.statuses.items())))
    for name, what in report.failures:
        print(f"  {name}: {what}")


if __name__ == "__main__":
    main()
