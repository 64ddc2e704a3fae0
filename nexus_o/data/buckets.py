"""Length-aware batching: group samples so each batch fits a token and audio budget.

``batch_by_budget`` is the pure grouping; ``BudgetBatchSampler`` wraps it for a
``torch.utils.data.DataLoader(batch_sampler=...)`` with per-epoch shuffling and DDP ranks.
Costs match what the batch will occupy:

- padded batches (``packed=False``): ``len(batch) * max(length)`` tokens, the padded tensor;
- packed batches (``packed=True``): ``sum(length)`` tokens, one row holding every sample;
- audio: ``sum(audio_seconds)``, since the audio encoder sees each clip whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

logger = logging.getLogger(__name__)


def _as_array(values: Sequence[float] | None, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros(n)
    if isinstance(values, np.ndarray):
        arr = values.astype(np.float64)
    else:  # a dataset column: None where audio was not measured
        arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} has {arr.shape[0]} entries but lengths has {n}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(arr) | (arr < 0))[0])
        raise ValueError(f"{name}[{bad}] = {values[bad]!r} is not a finite non-negative number "
                         "(load the manifest with media='exists' to measure audio)")
    return arr


def oversize(lengths: Sequence[int], max_tokens: int, audio_seconds: Sequence[float] | None = None,
             max_audio_seconds: float | None = None) -> list[int]:
    """Indices of samples that cannot fit any batch on their own."""
    tokens = np.asarray(lengths, dtype=np.int64)
    audio = _as_array(audio_seconds, len(tokens), "audio_seconds")
    too_big = tokens > max_tokens
    if max_audio_seconds is not None:
        too_big |= audio > max_audio_seconds
    return np.flatnonzero(too_big).tolist()


def batch_by_budget(
    lengths: Sequence[int],
    max_tokens: int,
    *,
    audio_seconds: Sequence[float] | None = None,
    max_audio_seconds: float | None = None,
    max_samples: int | None = None,
    packed: bool = False,
) -> list[list[int]]:
    """Group indices ``0..n-1`` into batches that respect every budget.

    Args:
        lengths: token count of each sample.
        max_tokens: token budget of a batch (padded or packed cost, see the module doc).
        audio_seconds / max_audio_seconds: per-sample input audio and the batch's audio budget.
        max_samples: optional cap on samples per batch.
        packed: cost a batch as one packed row instead of a padded rectangle.

    Returns batches in ascending length order; every index appears exactly once.
    Raises ``ValueError`` naming the first sample that exceeds a budget alone.
    """
    tokens = np.asarray(lengths, dtype=np.int64)
    audio = _as_array(audio_seconds, len(tokens), "audio_seconds")
    if max_tokens <= 0 or (max_samples is not None and max_samples <= 0):
        raise ValueError(f"budgets must be positive (max_tokens={max_tokens}, max_samples={max_samples})")
    too_big = oversize(tokens, max_tokens, audio, max_audio_seconds)
    if too_big:
        i = too_big[0]
        raise ValueError(f"sample {i} ({tokens[i]} tokens, {audio[i]:.1f} s audio) exceeds the batch budget "
                         f"(max_tokens={max_tokens}, max_audio_seconds={max_audio_seconds}); "
                         f"{len(too_big)} sample(s) in all: filter them or raise the budget")
    audio_cap = np.inf if max_audio_seconds is None else max_audio_seconds
    sample_cap = max_samples or len(tokens)
    order = np.argsort(tokens, kind="stable")
    if packed:
        return _pack_two_ends(order, tokens, audio, max_tokens, audio_cap, sample_cap)
    batches: list[list[int]] = []
    current: list[int] = []
    audio_sum = 0.0
    for i in order.tolist():
        # Ascending order: the newcomer is the longest, so the padded cost is count * its length.
        fits = ((len(current) + 1) * tokens[i] <= max_tokens and audio_sum + audio[i] <= audio_cap
                and len(current) < sample_cap)
        if current and not fits:
            batches.append(current)
            current, audio_sum = [], 0.0
        current.append(i)
        audio_sum += audio[i]
    if current:
        batches.append(current)
    return batches


def _pack_two_ends(order: np.ndarray, tokens: np.ndarray, audio: np.ndarray, max_tokens: int,
                   audio_cap: float, sample_cap: int) -> list[list[int]]:
    """Open each pack with the longest sample left, then fill it from the short end, then the long end."""
    lo, hi = 0, len(order) - 1
    batches = []
    while lo <= hi:
        pack = [int(order[hi])]
        used, heard = int(tokens[order[hi]]), float(audio[order[hi]])
        hi -= 1
        for take_short in (True, False):
            while lo <= hi and len(pack) < sample_cap:
                j = order[lo] if take_short else order[hi]
                if used + tokens[j] > max_tokens or heard + audio[j] > audio_cap:
                    break
                pack.append(int(j))
                used, heard = used + int(tokens[j]), heard + float(audio[j])
                lo, hi = (lo + 1, hi) if take_short else (lo, hi - 1)
        batches.append(sorted(pack, key=lambda k: tokens[k]))
    return batches[::-1]


class BudgetBatchSampler:
    """Batch sampler over ``batch_by_budget``: reshuffled every epoch, split across DDP ranks.

    Each epoch draws a permutation (seeded by ``seed + epoch``), cuts it into pools of
    ``pool_size`` samples (default: one pool), batches each pool by length, and shuffles the
    batch order. Pools trade padding for randomness. With ``num_replicas`` > 1 every rank gets
    the same number of batches (the few left over are dropped for that epoch).
    Oversize samples raise, unless ``drop_oversize`` (then they are listed in ``dropped``).
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, *, audio_seconds: Sequence[float] | None = None,
                 max_audio_seconds: float | None = None, max_samples: int | None = None, packed: bool = False,
                 shuffle: bool = True, seed: int = 0, pool_size: int | None = None, num_replicas: int = 1,
                 rank: int = 0, drop_oversize: bool = False):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.tokens = np.asarray(lengths, dtype=np.int64)
        self.audio = _as_array(audio_seconds, len(self.tokens), "audio_seconds")
        self.budget = dict(max_tokens=max_tokens, max_audio_seconds=max_audio_seconds, max_samples=max_samples,
                           packed=packed)
        self.dropped = oversize(self.tokens, max_tokens, self.audio, max_audio_seconds) if drop_oversize else []
        if self.dropped:
            logger.warning("dropping %d sample(s) over the batch budget, e.g. index %d", len(self.dropped),
                           self.dropped[0])
        self.usable = np.setdiff1d(np.arange(len(self.tokens)), self.dropped)
        self.shuffle, self.seed, self.pool_size = shuffle, seed, pool_size
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _epoch_batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng(self.seed + self.epoch)
        indices = rng.permutation(self.usable) if self.shuffle else self.usable
        pool = self.pool_size or max(len(indices), 1)
        batches = []
        for start in range(0, len(indices), pool):
            chunk = indices[start:start + pool]
            for batch in batch_by_budget(self.tokens[chunk], audio_seconds=self.audio[chunk], **self.budget):
                batches.append(chunk[batch].tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        per_rank = len(batches) // self.num_replicas
        mine = batches[self.rank::self.num_replicas][:per_rank] if self.num_replicas > 1 else batches
        self._cache = (self.epoch, mine)
        return mine

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._epoch_batches())

    def __len__(self) -> int:
        return len(self._epoch_batches())
