"""A torch.compile'd LLM decoder layer, trained under activation checkpointing, is one graph.

The setting of `compile_layers: true` and of benchmarks/gpu.py's train_compiled section, on the tiny preset: stage-2 trainable
parts, non-reentrant checkpointing of every layer, the chunked LM loss (no hidden states asked
for), and the dynamo setting of nexus_o.train.compiled_layers.COMPILE_CONFIG. Without that setting the `kernels`
package's attention wrapper (a global set and reset inside the checkpointed forward) broke the
graph and the whole layer ran eager; asking for hidden states installs transformers' output
capture hooks, whose ContextVar read breaks it too.
"""

import torch
from torch._dynamo.utils import counters

from nexus_o.bundle.loading import build_preset
from nexus_o.train.compiled_layers import COMPILE_CONFIG



def _layer_and_inputs():
    """Decoder layer 0 of a tiny model set up for stage-2 training, and what it is called with."""
    model, processor = build_preset("tiny", seed=0)
    model.requires_grad_(False)
    for part in (model.vl.model.language_model, model.vl.lm_head, model.vl.model.visual.merger, model.audio_adapter):
        part.requires_grad_(True)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    layer = model.vl.model.language_model.layers[0]
    seen = {}
    hook = layer.register_forward_pre_hook(lambda module, args, kwargs: seen.update(args=args, kwargs=kwargs),
                                           with_kwargs=True)
    rows = [{"messages": [{"role": "user", "content": "What colour is the sky?"},
                          {"role": "assistant", "content": "blue"}]}]
    batch = processor.apply_chat_template(rows, add_generation_prompt=False, return_labels=True)
    model(**batch, lm_loss="chunked", use_cache=False)
    hook.remove()
    return layer, seen["args"][0].detach(), seen["kwargs"]


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def test_compiled_decoder_layer_is_one_graph_forward_and_backward(one_thread):
    layer, hidden, kwargs = _layer_and_inputs()
    torch._dynamo.reset()
    counters.clear()
    try:
        with torch._dynamo.config.patch(COMPILE_CONFIG):
            explained = torch._dynamo.explain(layer)(hidden.clone().requires_grad_(), **kwargs)
            assert explained.graph_count == 1 and not explained.break_reasons, explained.break_reasons
            compiled = torch.compile(layer, backend="aot_eager")  # dynamo + AOTAutograd's backward, no codegen
            x = hidden.clone().requires_grad_()
            _first(compiled(x, **kwargs)).square().sum().backward()
        assert not counters["graph_break"], dict(counters["graph_break"])
        got = [x.grad] + [p.grad.clone() for p in layer.parameters()]
        layer.zero_grad(set_to_none=True)
        y = hidden.clone().requires_grad_()
        _first(layer(y, **kwargs)).square().sum().backward()  # eager
        expected = [y.grad] + [p.grad for p in layer.parameters()]
        assert all(g is not None for g in got + expected)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b)
    finally:
        torch._dynamo.reset()
