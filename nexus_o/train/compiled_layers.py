"""Regional compilation for training (`compile_layers: true`): each LLM decoder layer becomes one
torch.compile graph (norms, rotary and SwiGLU fused by inductor), the rest of the model stays eager.

Under activation checkpointing dynamo refuses any side effect inside the checkpointed forward,
and where the `kernels` package is installed (a transformers dependency) it wraps Qwen2.5-VL's
attention forward in one that sets and then resets a global (`use_kernelized_func`): a graph
break that left the whole layer eager. The side effect is undone within the same forward, so not
replaying it when the backward recomputes the layer is safe: `COMPILE_CONFIG` says so to dynamo.
Hidden states must not be asked for in such a step (transformers' output-capture hooks read a
ContextVar that breaks the graph); the chunked LM loss asks for none.
`tests/models/test_compiled_layer.py` checks one graph, no break, and eager-equal gradients.
"""

from __future__ import annotations

import torch

COMPILE_CONFIG = {"skip_fwd_side_effects_in_bwd_under_checkpoint": True}


def compile_decoder_layers(model) -> int:
    """Compile every LLM decoder layer of a `NexusOForConditionalGeneration` in place (state-dict
    keys unchanged; the first steps pay the compile) and set `COMPILE_CONFIG` for this process.
    Returns how many layers were compiled."""
    for key, value in COMPILE_CONFIG.items():
        setattr(torch._dynamo.config, key, value)
    layers = model.vl.model.language_model.layers
    for layer in layers:
        layer.compile()
    return len(layers)
