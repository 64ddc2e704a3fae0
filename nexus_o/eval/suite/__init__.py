"""`nexus-o eval --suite paper --data-root DIR`: every benchmark of the paper's audio tables whose data
is under DIR, run by `nexus_o.eval.runner`, judged and reported beside the paper (docs/eval-suite.md).

- `catalogue`: the benchmarks, their folders under the data root and their place in the paper's tables;
- `layouts`: readers of each release's own layout into benchmark manifests;
- `judges`: the Seed-TTS judges (Whisper-large-v3, Paraformer-zh) from local folders, pinned;
- `run`: `run_suite`; `report`: suite.json and suite.md.
"""
