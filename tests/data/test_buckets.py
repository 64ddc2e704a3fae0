"""Length-aware batching respects its token and audio budgets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus_o.data.buckets import BudgetBatchSampler, batch_by_budget


def _costs(batch, lengths, audio, packed):
    tokens = sum(lengths[i] for i in batch) if packed else len(batch) * max(lengths[i] for i in batch)
    return tokens, sum(audio[i] for i in batch)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 64), min_size=1, max_size=60), packed=st.booleans(),
       max_samples=st.one_of(st.none(), st.integers(1, 8)), data=st.data())
def test_every_batch_fits_and_every_sample_is_used_once(lengths, packed, max_samples, data):
    audio = data.draw(st.lists(st.floats(0, 10, allow_subnormal=False), min_size=len(lengths), max_size=len(lengths)))
    batches = batch_by_budget(lengths, 128, audio_seconds=audio, max_audio_seconds=20.0, max_samples=max_samples,
                              packed=packed)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        tokens, seconds = _costs(batch, lengths, audio, packed)
        assert tokens <= 128 and seconds <= 20.0
        assert max_samples is None or len(batch) <= max_samples


def test_grouping_by_length_reduces_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 500, size=400).tolist()
    batches = batch_by_budget(lengths, 2048)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert sum(lengths) / padded > 0.9  # random batches of the same size waste far more
    packs = batch_by_budget(lengths, 2048, packed=True)
    assert sum(lengths) / (len(packs) * 2048) > 0.9


def test_oversize_samples_raise_or_are_dropped():
    with pytest.raises(ValueError, match=r"sample 1 \(300 tokens"):
        batch_by_budget([10, 300, 20], 256)
    with pytest.raises(ValueError, match="sample 0 .*40.0 s audio"):
        batch_by_budget([10, 20], 256, audio_seconds=[40.0, 1.0], max_audio_seconds=30.0)
    with pytest.raises(ValueError, match=r"audio_seconds\[1\] = None"):
        batch_by_budget([10, 20], 256, audio_seconds=[1.0, None], max_audio_seconds=30.0)
    sampler = BudgetBatchSampler([10, 300, 20], 256, drop_oversize=True)
    assert sampler.dropped == [1]
    assert sorted(i for b in sampler for i in b) == [0, 2]


def test_sampler_is_seeded_per_epoch_and_splits_ranks():
    lengths = list(range(1, 101))
    sampler = BudgetBatchSampler(lengths, 200, seed=3, pool_size=32)
    epoch0 = list(sampler)
    assert epoch0 == list(BudgetBatchSampler(lengths, 200, seed=3, pool_size=32))
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    assert sorted(i for b in epoch0 for i in b) == list(range(100))
    ranks = [list(BudgetBatchSampler(lengths, 200, seed=3, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1  # equal step counts keep DDP in lockstep
    used = [i for r in ranks for b in r for i in b]
    assert len(used) == len(set(used))
    with pytest.raises(ValueError, match="rank 3"):
        BudgetBatchSampler(lengths, 200, num_replicas=3, rank=3)
