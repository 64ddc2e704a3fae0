"""The Ray engine of the synthesis runner: the same shard function, scheduled by Ray Data.

`ray.data.from_items(shard specs).map(ShardWorker)` runs one actor per CPU; each actor builds
its processor once and calls `runner.run_shard`, which publishes the shard exactly as the local
engine does, so both engines write the same files and a run may be resumed with either. Every
actor receives the item list with its constructor arguments.

Without `address` a local cluster is started (`ray.init(num_cpus=workers)`, no dashboard) and
shut down afterwards; with one (e.g. "auto") the run joins that cluster, whose workers must see
the output folder at the same path (a shared filesystem). Ray may restart a dead actor and retry
its shard: publishing a shard is idempotent, and a failed run resumes from the markers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from nexus_o.synth.runner import ItemProcessor, ShardSpec, run_shard


class ShardWorker:
    """A Ray Data map actor: builds the processor once, then publishes one shard per row."""

    def __init__(self, make_processor: Callable[[], ItemProcessor], items: Sequence[Any], out_dir: str):
        self.items = items
        self.processor = make_processor()
        self.out_dir = Path(out_dir)

    def __call__(self, row: dict) -> dict:
        spec = ShardSpec(int(row["index"]), int(row["start"]), int(row["stop"]))
        run_shard(spec, self.items, self.processor, self.out_dir)
        return {"index": spec.index, "items": spec.stop - spec.start}


def run_shards_ray(
    todo: Sequence[ShardSpec],
    items: Sequence[Any],
    make_processor: Callable[[], ItemProcessor],
    out_dir: Path,
    workers: int,
    address: str | None,
    bar: tqdm,
) -> None:
    """Run the unfinished shards `todo` on Ray; `bar` advances by each shard's item count.

    Raises:
        ImportError: Ray is not installed (pip install 'nexus-o[synth]').
    """
    if not todo:
        return
    try:
        import ray
    except ImportError as err:
        raise ImportError("the ray engine needs Ray Data: pip install 'nexus-o[synth]' (ray[data])") from err
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False, **kwargs)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts items, not blocks
        rows = [{"index": s.index, "start": s.start, "stop": s.stop} for s in todo]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map(
            ShardWorker,
            fn_constructor_args=(make_processor, list(items), str(out_dir)),
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(rows))),
            num_cpus=1,
        )
        for row in dataset.iter_rows():
            bar.update(int(row["items"]))
    finally:
        if started:
            ray.shutdown()
