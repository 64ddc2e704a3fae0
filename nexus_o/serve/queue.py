"""A bounded line of model jobs, run one at a time on one worker thread, with deadlines.

Why one thread: a model call is CPU/GPU bound and not safe to run twice at once on one set of
weights with shared caches; one worker keeps latency predictable and memory bounded. The event
loop never blocks: a job's items travel back through an asyncio queue.

Capacity is `max_waiting` jobs waiting plus the one running; `submit` raises `QueueFullError`
beyond that (the server answers 429). A caller that stops waiting (deadline passed, client
gone) cancels its job: a job still waiting is dropped, a running one stops at its next item
(the model call under way finishes its current step in the background).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

log = logging.getLogger("nexus_o.serve")


class QueueFullError(RuntimeError):
    """No room left in the request queue."""


class JobTimeout(TimeoutError):
    """The job's deadline passed before it finished."""


class Job:
    """One unit of model work: `work()` returns an iterator whose items stream to the caller."""

    def __init__(self, work: Callable[[], Iterator[Any]], loop: asyncio.AbstractEventLoop):
        self._work = work
        self._loop = loop
        self._events: asyncio.Queue = asyncio.Queue()
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def _emit(self, kind: str, value: Any = None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server shutting down): nobody listens
            self.cancel()

    def execute(self) -> None:
        """Run on the worker thread: stream items, then "done" (or the error raised)."""
        if self.cancelled:
            return
        iterator = None
        try:
            iterator = self._work()
            for item in iterator:
                if self.cancelled:
                    return
                self._emit("item", item)
            self._emit("done")
        except BaseException as err:  # noqa: BLE001 - handed to the waiting request, which decides
            self._emit("error", err)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    async def items(self, deadline: float) -> AsyncIterator[Any]:
        """Yield the job's items until it ends; raise its error, or `JobTimeout` at `deadline`.

        deadline is in the event loop's clock (`loop.time()`).
        """
        try:
            while True:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    raise JobTimeout("the request timed out")
                try:
                    kind, value = await asyncio.wait_for(self._events.get(), remaining)
                except TimeoutError:
                    raise JobTimeout("the request timed out") from None
                if kind == "done":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            self.cancel()  # a no-op once done; stops the work when the caller leaves early


class ModelWorker:
    """Runs `Job`s one at a time on a daemon thread; at most `max_waiting` wait behind the running one."""

    def __init__(self, max_waiting: int):
        if max_waiting < 0:
            raise ValueError(f"max_waiting={max_waiting} must be >= 0")
        self.max_waiting = max_waiting
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

    def submit(self, work: Callable[[], Iterator[Any]]) -> Job:
        """Queue `work` (called on the worker thread); must be called from the event loop."""
        job = Job(work, asyncio.get_running_loop())
        with self._cond:
            if self._closed:
                raise RuntimeError("the model worker is shut down")
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
            try:
                job.execute()
            except Exception:  # noqa: BLE001 - execute() reports errors itself; never let the worker die
                log.exception("model worker: job failed outside its own error handling")
            finally:
                with self._cond:
                    self._busy = False

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking jobs; waiting ones are cancelled; waits up to `timeout` s for the running one."""
        with self._cond:
            self._closed = True
            for job in self._pending:
                job.cancel()
            self._pending.clear()
            self._cond.notify_all()
        self._thread.join(timeout)
