"""Per-codebook samplers: greedy, temperature, top-k, top-p."""

import pytest
import torch

from nexus_o.models.sampling import SamplingConfig, filter_top_p, sample_codes


def test_greedy_takes_the_argmax_of_every_codebook():
    logits = torch.randn(3, 8, 50)
    assert torch.equal(sample_codes(logits, SamplingConfig(greedy=True)), logits.argmax(-1))


def test_top_k_draws_only_among_the_k_best():
    logits = torch.randn(2, 8, 40)
    drawn = sample_codes(logits, SamplingConfig(top_k=3), torch.Generator().manual_seed(0))
    best = logits.topk(3, dim=-1).indices
    assert (best == drawn[..., None]).any(dim=-1).all()


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()[None]
    assert torch.isinf(filter_top_p(logits, 0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_top_p(logits, 0.5)).tolist() == [[False, True, True, True]]


def test_sampling_draws_only_allowed_ids_and_is_seeded():
    logits = torch.zeros(4, 8, 30)
    logits[..., 20:] = float("-inf")
    options = SamplingConfig(temperature=0.7, top_k=10)
    first = sample_codes(logits, options, torch.Generator().manual_seed(0))
    assert (first < 20).all() and first.shape == (4, 8)
    assert torch.equal(first, sample_codes(logits, options, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("kwargs, field", [({"temperature": 0.0}, "temperature"), ({"top_k": 0}, "top_k"),
                                           ({"top_p": 1.5}, "top_p")])
def test_bad_options_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SamplingConfig(**kwargs)
