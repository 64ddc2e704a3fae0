"""One way to stop generation early: a `CancelToken` that generation loops check at every step.

Whoever starts the work keeps the token and may `cancel()` it from any thread (a server whose
client left, a deadline, a Ctrl-C handler); the work checks it once per decoding step:

- text generation (transformers `generate`) through `CancelCriteria`, a stopping criterion,
  so the LLM stops after the step under way;
- loops of our own (the speech decoder's frames, the codec's chunks) call `token.check()`,
  which raises `Cancelled`.

A token may also carry a deadline (`time.monotonic()` seconds): past it, it counts as cancelled
without anyone calling `cancel()`, so work bounded by a deadline stops even when its owner is
stuck. A step that has started always finishes: a single prefill over a long prompt cannot be
cut short, which is why prompt lengths are checked before any work (`nexus_o.inference.limits`).
"""

from __future__ import annotations

import threading
import time

import torch
from transformers import StoppingCriteria


class Cancelled(RuntimeError):
    """Work stopped because its `CancelToken` was cancelled (or its deadline passed)."""


class CancelToken:
    """A thread-safe "stop now" flag, optionally with a deadline.

    deadline: a `time.monotonic()` time after which the token counts as cancelled; None: none.
    parent: a token whose cancellation cancels this one too (this one's does not reach the parent):
        work that has its own reasons to stop, inside work that can be stopped from outside.
    """

    def __init__(self, deadline: float | None = None, parent: "CancelToken | None" = None):
        self.deadline, self.parent = deadline, parent
        self._event = threading.Event()
        self._reason = "cancelled"

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the work to stop at its next step (idempotent; the first reason is kept)."""
        if not self._event.is_set():
            self._reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        if self._event.is_set():
            return True
        if self.parent is not None and self.parent.cancelled:
            self.cancel(self.parent.reason or "cancelled")
            return True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.cancel("deadline passed")
            return True
        return False

    @property
    def reason(self) -> str | None:
        """Why the token was cancelled; None while it is not."""
        return self._reason if self.cancelled else None

    def check(self) -> None:
        """Raise `Cancelled` if the token is cancelled; call it once per step of a loop."""
        if self.cancelled:
            raise Cancelled(self._reason)


class CancelCriteria(StoppingCriteria):
    """A transformers stopping criterion: every sequence stops once `token` is cancelled."""

    def __init__(self, token: CancelToken):
        self.token = token

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.token.cancelled, dtype=torch.bool, device=input_ids.device)
