"""A bounded line of model jobs, run one at a time on one worker thread, with deadlines.
Jobs that may share a model call (text replies) and wait together run as one batch.

Why one thread: a model call is CPU/GPU bound and not safe to run twice at once on one set of
weights with shared caches; one worker keeps latency predictable and memory bounded. The event
loop never blocks: a job's items travel back through an asyncio queue.

Capacity is `max_waiting` jobs waiting plus the one running; `submit` raises `QueueFullError`
beyond that (the server answers 429); a cancelled job gives its place back at once. Waits are
bounded twice: a job not started by its `start_by` time (the server's `max_queue_wait`) raises
`QueueWaitTimeout` (503), and every job has a deadline (`JobTimeout`, 504). A caller that stops
waiting (deadline passed, client gone) cancels its job: a job still waiting is dropped, a
running one stops at the model's next decoding step, because the job's `CancelToken` reaches
the generation loops (`nexus_o.inference.cancel`).

Batching: a job submitted with a `Batchable` may run together with other waiting jobs of the same
`key` (up to `max_batch`; the worker waits up to `batch_window` seconds for more to arrive once
it has taken one): one call of `run(items, tokens)` serves them all, yielding
(index, item, last) for the job at `index`; `last` ends that job's stream at once, while the
others go on. A job cancelled in a batch stops receiving items (its token tells the batch to drop
its row); the batch's error reaches every job still in it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from nexus_o.inference.cancel import Cancelled, CancelToken

log = logging.getLogger("nexus_o.serve")


class QueueFullError(RuntimeError):
    """No room left in the request queue."""


class JobTimeout(TimeoutError):
    """The job's deadline passed before it finished."""


class QueueWaitTimeout(TimeoutError):
    """The job waited longer than allowed for the model to become free."""


class JobCancelled(RuntimeError):
    """The job was cancelled by its owner (the client left) before it finished."""


@dataclass(frozen=True)
class Batchable:
    """How a job may share one model call with others (see the module doc).

    key: jobs with equal keys may run together; item: this job's part of the call;
    run(items, tokens): the call for several jobs' items and their `CancelToken`s, yielding
    (index, item, last) tuples.
    """

    key: Hashable
    item: Any
    run: Callable[[list[Any], list[CancelToken]], Iterator[tuple[int, Any, bool]]]


class Job:
    """One unit of model work: `work(token)` returns an iterator whose items stream to the caller.

    `token` is the job's `CancelToken`: the work passes it down to the model's decoding loops.
    timeout: seconds from submission after which the token counts as cancelled on its own.
    batch: how it may run together with others (`Batchable`); None: always alone.
    """

    def __init__(self, work: Callable[[CancelToken], Iterator[Any]], loop: asyncio.AbstractEventLoop,
                 timeout: float | None = None, batch: Batchable | None = None):
        self._work = work
        self.batch = batch
        self._loop = loop
        self._events: asyncio.Queue = asyncio.Queue()
        self.token = CancelToken(None if timeout is None else time.monotonic() + timeout)
        self.started = False
        self._cancelled_by: str | None = None  # the reason given to `cancel`

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the job: dropped if still waiting, else stopped at the model's next step."""
        if self._cancelled_by is None:
            self._cancelled_by = reason
            self.token.cancel(reason)
            self._emit("cancelled")  # wakes `items`

    def _emit(self, kind: str, value: Any = None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server shutting down): nobody listens
            self.token.cancel("the server is shutting down")

    def execute(self) -> None:
        """Run on the worker thread: "started", the items, then "done" (or the error raised)."""
        def alone(jobs: list[Job]) -> Iterator[tuple[int, Any, bool]]:
            iterator = jobs[0]._work(jobs[0].token)
            try:
                for item in iterator:
                    yield 0, item, False
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()

        Job._drive([self], alone)

    @staticmethod
    def execute_batch(jobs: list[Job]) -> None:
        """Run jobs of one `Batchable.key` as one call on the worker thread (see the module doc)."""
        Job._drive(jobs, lambda live: live[0].batch.run([job.batch.item for job in live], [job.token for job in live]))

    @staticmethod
    def _drive(jobs: list[Job], start: Callable[[list[Job]], Iterator[tuple[int, Any, bool]]]) -> None:
        """The jobs not yet cancelled get "started", then the (index, item, last) items of
        `start(jobs)` each to its job, "done" when `last` or at the end, or the error raised; a
        cancelled job gets nothing more, and the work stops once every job has left."""
        jobs = [job for job in jobs if not job.cancelled]
        if not jobs:
            return
        for job in jobs:
            job._emit("started")
        open_jobs = set(range(len(jobs)))
        iterator = None
        try:
            iterator = start(jobs)
            for index, item, last in iterator:
                job = jobs[index]
                if index in open_jobs and not job.cancelled:
                    job._emit("item", item)
                    if last:
                        job._emit("done")
                        open_jobs.discard(index)
                if not any(not jobs[i].cancelled for i in open_jobs):
                    return  # everyone still waiting has left
            for index in open_jobs:
                jobs[index]._emit("done")
        except Cancelled:
            return  # whoever cancelled has stopped listening
        except BaseException as err:  # noqa: BLE001 - handed to every request still waiting, which decides
            for index in open_jobs:
                jobs[index]._emit("error", err)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    async def items(self, deadline: float, start_by: float | None = None) -> AsyncIterator[Any]:
        """Yield the job's items until it ends; raise its error, `QueueWaitTimeout` when it has
        not started by `start_by`, or `JobTimeout` at `deadline`.

        Both times are in the event loop's clock (`loop.time()`).
        """
        try:
            while True:
                if self._cancelled_by is not None:  # before any item still buffered: nobody wants it
                    raise JobCancelled(self._cancelled_by)
                waiting = not self.started and start_by is not None and start_by < deadline
                until = start_by if waiting else deadline
                remaining = until - self._loop.time()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    kind, value = await asyncio.wait_for(self._events.get(), remaining)
                except TimeoutError:
                    if waiting:
                        raise QueueWaitTimeout("the request waited too long for the model") from None
                    raise JobTimeout("the request timed out") from None
                if kind == "started":
                    self.started = True
                elif kind == "done":
                    return
                elif kind == "error":
                    raise value
                elif kind == "item":  # ("cancelled" only wakes the check above)
                    yield value
        finally:
            self.cancel("the caller stopped waiting")  # a no-op once done; stops the work early


class ModelWorker:
    """Runs `Job`s one at a time (or one batch at a time) on a daemon thread; at most
    `max_waiting` wait behind the running one.

    max_batch: jobs of one `Batchable.key` run together, at most this many; batch_window: seconds
    the worker waits for more such jobs once it has taken one and the batch is not full.
    """

    def __init__(self, max_waiting: int, *, max_batch: int = 1, batch_window: float = 0.0):
        if max_waiting < 0:
            raise ValueError(f"max_waiting={max_waiting} must be >= 0")
        if max_batch < 1 or batch_window < 0:
            raise ValueError(f"max_batch={max_batch} must be >= 1 and batch_window={batch_window} >= 0")
        self.max_waiting = max_waiting
        self.max_batch, self.batch_window = max_batch, batch_window
        self._pending: deque[Job] = deque()
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="nexus-o-model", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._pending)

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy

    def submit(self, work: Callable[[CancelToken], Iterator[Any]], timeout: float | None = None,
               batch: Batchable | None = None) -> Job:
        """Queue `work` (called on the worker thread with the job's `CancelToken`); must be called
        from the event loop. timeout: seconds after which the job's token cancels itself; batch:
        how the job may run together with others (then `work` is not called when it does)."""
        job = Job(work, asyncio.get_running_loop(), timeout, batch)
        with self._cond:
            if self._closed:
                raise RuntimeError("the model worker is shut down")
            if any(waiting.cancelled for waiting in self._pending):  # their callers have left
                self._pending = deque(waiting for waiting in self._pending if not waiting.cancelled)
            if len(self._pending) + int(self._busy) > self.max_waiting:
                raise QueueFullError(f"the request queue is full ({self.max_waiting} waiting)")
            self._pending.append(job)
            self._cond.notify()
        return job

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._pending.popleft()
                self._busy = True
                batch = self._batch_for(job)
            try:
                if len(batch) > 1:
                    Job.execute_batch(batch)
                else:
                    job.execute()
            except Exception:  # noqa: BLE001 - execute() reports errors itself; never let the worker die
                log.exception("model worker: job failed outside its own error handling")
            finally:
                with self._cond:
                    self._busy = False

    def _batch_for(self, job: Job) -> list[Job]:
        """`job` and the waiting jobs that run with it (holding the lock; waits `batch_window`
        for more while the batch is not full)."""
        if job.batch is None or self.max_batch == 1:
            return [job]
        batch = [job]
        until = time.monotonic() + self.batch_window
        while True:
            for other in list(self._pending):
                if len(batch) == self.max_batch:
                    break
                if other.batch is not None and other.batch.key == job.batch.key and not other.cancelled:
                    self._pending.remove(other)
                    batch.append(other)
            left = until - time.monotonic()
            if len(batch) == self.max_batch or left <= 0 or self._closed:
                return batch
            self._cond.wait(left)

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking jobs; waiting ones are cancelled; waits up to `timeout` s for the running one."""
        with self._cond:
            self._closed = True
            for job in self._pending:
                job.token.cancel("the server is shutting down")
            self._pending.clear()
            self._cond.notify_all()
        self._thread.join(timeout)
