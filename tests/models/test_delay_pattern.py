"""Properties of the codebook delay pattern (build / revert / valid_mask / append_end)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus_o.models import delay_pattern

PAD = -1

shapes = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(0, 24))  # B, K, T


def random_codes(batch: int, codebooks: int, frames: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 1000, (batch, codebooks, frames), generator=torch.Generator().manual_seed(seed))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_revert_undoes_build(shape, seed):
    codes = random_codes(*shape, seed)
    delayed = delay_pattern.build(codes, PAD)
    assert delayed.shape == (shape[0], shape[1], shape[2] + shape[1] - 1)
    assert torch.equal(delay_pattern.revert(delayed), codes)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_mask_covers_exactly_the_real_codes(shape, seed):
    batch, codebooks, frames = shape
    delayed = delay_pattern.build(random_codes(*shape, seed), PAD)
    mask = delay_pattern.valid_mask(codebooks, frames)
    assert mask.shape == delayed.shape[1:]
    assert torch.equal(delayed != PAD, mask.expand_as(delayed))
    assert int(mask.sum()) == codebooks * frames


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), data=st.data())
def test_revert_of_a_window_gives_those_frames(shape, seed, data):
    codes = random_codes(*shape, seed)
    codebooks, frames = shape[1], shape[2]
    first = data.draw(st.integers(0, frames))
    last = data.draw(st.integers(first, frames))
    window = delay_pattern.build(codes, PAD)[..., first:last + codebooks - 1]
    assert torch.equal(delay_pattern.revert(window), codes[..., first:last])


def test_codebook_k_is_shifted_by_k_steps():
    codes = torch.arange(1, 7).view(1, 2, 3)  # codebook 0: 1 2 3, codebook 1: 4 5 6
    assert delay_pattern.build(codes, 0).tolist() == [[[1, 2, 3, 0], [0, 4, 5, 6]]]


def test_append_end_marks_the_frame_after_the_last_and_drops_padding():
    codes = torch.tensor([[[1, 2, 3]], [[4, 5, 6]]])  # B=2, K=1, T=3
    out = delay_pattern.append_end(codes, torch.tensor([3, 1]), end_id=8, pad_id=9)
    assert out.tolist() == [[[1, 2, 3, 8]], [[4, 8, 9, 9]]]


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="codes must be"):
        delay_pattern.build(torch.zeros(3, 4, dtype=torch.long), PAD)
    with pytest.raises(ValueError, match="at least 3 steps"):
        delay_pattern.revert(torch.zeros(1, 4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="num_codebooks"):
        delay_pattern.valid_mask(0, 5)
