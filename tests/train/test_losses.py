"""The chunked linear cross-entropy equals transformers' causal-LM loss, values and gradients."""

import pytest
import torch
from transformers.loss.loss_utils import ForCausalLMLoss

from nexus_o.train.losses import linear_cross_entropy


@pytest.mark.parametrize("chunk", [1, 5, 1024])
@pytest.mark.parametrize("num_items", [None, 7])
def test_matches_transformers_loss(chunk, num_items):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 9, 16, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 16, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 50, (2, 9), generator=g)
    labels[0, :4] = -100  # prompt tokens carry no target
    ref = ForCausalLMLoss(hidden @ weight.T, labels, 50, num_items_in_batch=num_items)
    ref_grads = torch.autograd.grad(2.0 * ref, (hidden, weight))
    got = linear_cross_entropy(hidden, weight, labels, num_items, chunk=chunk)
    got_grads = torch.autograd.grad(2.0 * got, (hidden, weight))
    torch.testing.assert_close(got, ref.float())
    for a, b in zip(got_grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_frozen_head_and_no_targets():
    hidden = torch.randn(1, 4, 8, requires_grad=True)
    weight = torch.randn(10, 8)  # frozen head: no weight gradient is computed
    labels = torch.full((1, 4), -100)
    loss = linear_cross_entropy(hidden, weight, labels)
    loss.backward()
    assert loss.item() == 0.0 and hidden.grad.abs().sum() == 0
    assert linear_cross_entropy(hidden, weight, labels, impl="liger").item() == 0.0  # CPU: falls back
