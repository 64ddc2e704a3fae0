"""How fast the tiny world is generated, per size and per step, and how well its voices pass ASR.

    python benchmarks/synth_tiny_world.py [--sizes small,default] [--workers N]

Builds each size from scratch in a temporary folder (the default size is the main job's data)
and prints seconds per step (plan, images, clips, splice, manifests), clips a second, audio seconds
generated per wall second, the spliced TTS phrases, the line count of every manifest, and the ASR
round-trip pass rate (Whisper tiny.en on the verified subset) per voice. Timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from nexus_o.synth.config import tiny_world_config
from nexus_o.synth.tiny_world import build_world


def bench(size: str, workers: int) -> None:
    cfg = tiny_world_config(size, overrides=[f"workers={workers}"])
    with tempfile.TemporaryDirectory(prefix=f"tiny-world-{size}-") as out:
        start = time.perf_counter()
        report = build_world(out, cfg, progress=False)
        wall = time.perf_counter() - start
    steps = "  ".join(f"{k} {v:.1f} s" for k, v in report["seconds"].items() if k != "total")
    audio_seconds = report["clips"]["audio_hours"] * 3600
    print(f"\n== size {size}: {wall:.1f} s wall ({steps})")
    print(f"   {report['clips']['written']} clips, {report['clips_per_second']} clips/s, "
          f"{audio_seconds:.0f} s of audio = {audio_seconds / report['seconds']['clips']:.1f} s audio per s; "
          f"{sum(report['images'].values())} images")
    spliced = report["tts_spliced"]
    print(f"   {spliced['written']}/{spliced['planned']} spliced TTS phrases with word timings "
          f"({spliced['skipped_missing_word']} skipped for a missing word clip)")
    for name, lines in report["manifests"].items():
        print(f"   {lines:6d}  {name}")
    for backend, voices in report["verification"].items():
        for voice, r in voices.items():
            print(f"   ASR pass {backend} / {voice}: {r['passed']}/{r['checked']} ({r['pass_rate']:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,default", help="comma-separated sizes to build")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0 = all cores)")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        bench(size.strip(), args.workers)


if __name__ == "__main__":
    main()
