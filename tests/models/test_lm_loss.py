"""The chunked linear cross-entropy equals transformers' causal-LM loss, values and gradients."""

import pytest
import torch
from transformers.loss.loss_utils import ForCausalLMLoss

from nexus_o.models.lm_loss import linear_cross_entropy


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


def test_model_computes_the_chunked_loss_in_its_head(one_thread):
    """lm_loss="chunked": the same loss and gradients as transformers' loss, no logits, and the
    loss is computed inside the LM head's forward (where FSDP2 / ZeRO-3 hold its weight whole)."""
    from nexus_o.bundle.loading import build_preset
    from nexus_o.models.lm_loss import LMHead
    from tests.conftest import tone

    model, processor = build_preset("tiny", seed=0)
    model.train()
    head = model.vl.lm_head
    assert isinstance(head, LMHead) and head.weight is model.get_output_embeddings().weight
    rows = [{"messages": [{"role": "user", "content": "<audio>Hi"}, {"role": "assistant", "content": "red square"}],
             "audios": [tone(0.5)]},
            {"messages": [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "hi"}]}]
    batch = processor.apply_chat_template(rows, add_generation_prompt=False, return_labels=True)
    results = {}
    for mode in ("hf", "chunked"):
        calls = []  # per call of the head: were labels given?

        def record(module, args, kwargs, out):
            calls.append(len(args) > 1 or "labels" in kwargs)

        hook = head.register_forward_hook(record, with_kwargs=True)
        out = model(**batch, lm_loss=mode, num_items_in_batch=torch.tensor(7))
        hook.remove()
        out.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[mode] = out.loss.detach(), grads, out.logits, calls
        model.zero_grad(set_to_none=True)
    (hf_loss, hf_grads, hf_logits, hf_calls), (loss, grads, logits, calls) = results["hf"], results["chunked"]
    assert hf_calls == [False] and calls == [True]  # the head ran once; with labels only when chunked
    assert logits is None and hf_logits is not None
    torch.testing.assert_close(loss, hf_loss)
    assert grads.keys() == hf_grads.keys() and "vl.lm_head.weight" in grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, hf_grads[name], atol=1e-5, rtol=1e-4, msg=name)
    with pytest.raises(ValueError, match="lm_loss"):
        model(**batch, lm_loss="fused")
