"""The LLM's reply token by token, each with the speech decoder's condition for it.

`reply_steps` prefills the prompt once, then decodes greedily one token a step through the
language model with a KV cache. Each step reads one reply token and so yields it together with
its last hidden state turned into the speech condition (`speech_condition`: the same states the
stage-3 collator trains on, without a second pass over prompt + reply), and whether the reply
ends after it (the token drawn next is <|im_end|>, or the budget is spent). An empty reply yields
<|im_end|> itself, as the processor's `reply_mask` does.

On CUDA the cache is a `StaticCache` (fixed shapes, kept and reset between replies of the same
capacity bucket) and the decode step is captured once in a CUDA graph and replayed: one launch
a token instead of one per kernel (`step_graph`; a capture that fails falls back to eager, with
a warning). `compile_step=True` compiles the eager step with torch.compile instead.

On CUDA, prefill and decoding run with PyTorch's cuDNN attention backend switched off (flash,
memory-efficient and math stay): with the static cache's explicit mask, cuDNN took 141 ms for
the 7B preset's 424-token prefill where the others take 72 ms (H200, docs/performance.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import BatchFeature, DynamicCache, StaticCache

from nexus_o.inference.cancel import CancelToken

log = logging.getLogger(__name__)
CACHE_BUCKET = 512  # static caches come in multiples of this many tokens (reused between replies)
NOT_CUDNN = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def attention_backends(device: torch.device):
    """The attention backends decoding uses on `device`: all but cuDNN on CUDA (see the module doc)."""
    return sdpa_kernel(NOT_CUDNN) if device.type == "cuda" else contextlib.nullcontext()


@dataclass
class ReplyStep:
    """token: reply token id; condition: its speech condition [1, llm_hidden_size]; last: the reply
    ends after it; empty: the reply is empty (token is <|im_end|>, spoken from but not text)."""

    token: int
    condition: torch.Tensor | None
    last: bool
    empty: bool = False


class ReplyDecoder:
    """Greedy decoding of one reply (batch 1) with per-token speech conditions (see the module doc).

    static_cache: a fixed-shape cache (default: on CUDA); step_graph: replay the decode step as a
    CUDA graph (default: on CUDA with a static cache); compile_step: torch.compile the step.
    """

    def __init__(self, model, eos_id: int, *, static_cache: bool | None = None, step_graph: bool | None = None,
                 compile_step: bool = False):
        self.model, self.eos_id = model, eos_id
        cuda = model.device.type == "cuda"
        self.static_cache = cuda if static_cache is None else static_cache
        self.step_graph = (cuda and self.static_cache and not compile_step) if step_graph is None else step_graph
        # Per cache length, kept on the model so every chat session reuses them; None: capture failed.
        self._graphs: dict[int, _GraphedStep | None] = model.__dict__.setdefault("_reply_step_graphs", {})
        language = model.vl.model.language_model
        self._language, self._head = language, model.vl.lm_head
        self._step = torch.compile(self._forward_step, mode="reduce-overhead", dynamic=False) \
            if compile_step else self._forward_step

    def _forward_step(self, token: torch.Tensor, position: torch.Tensor, cache) -> tuple[torch.Tensor, torch.Tensor]:
        """token [1, 1], position [3, 1, 1] -> (last hidden [1, 1, H], logits [1, V])."""
        embeds = self._language.embed_tokens(token)
        hidden = self._language(inputs_embeds=embeds, position_ids=position, cache=cache, use_cache=True).last_hidden_state
        return hidden, self._head(hidden)[:, -1]

    def _draw(self, logits: torch.Tensor, index: int, min_new_tokens: int) -> torch.Tensor:
        """Greedy token [1, 1] from logits [1, V] for reply position `index`."""
        if index < min_new_tokens:
            logits = logits.clone()
            logits[:, self.eos_id] = -torch.inf
        return logits.argmax(dim=-1, keepdim=True)

    def _new_cache(self, length: int):
        """(cache, graphed step or None) for a prompt + reply of `length` tokens."""
        text = self.model.config.vl_config.text_config
        if not self.static_cache:
            return DynamicCache(config=text), None
        length = -(-length // CACHE_BUCKET) * CACHE_BUCKET
        if self.step_graph:
            graphed = self._graphs.get(length)
            if graphed is not None:
                graphed.cache.reset()
                return graphed.cache, graphed
            if length in self._graphs:  # capture failed before: eager on a fresh cache
                return StaticCache(config=text, max_cache_len=length), None
            graphed = _GraphedStep(StaticCache(config=text, max_cache_len=length), self._forward_step)
            self._graphs[length] = graphed
            return graphed.cache, graphed
        return StaticCache(config=text, max_cache_len=length), None

    def steps(self, inputs: BatchFeature, max_new_tokens: int, cancel: CancelToken | None = None, *,
              min_new_tokens: int = 0, conditions: bool = True) -> Iterator[ReplyStep]:
        """Yield the reply to one prepared prompt (`prepare_inputs`, batch 1) token by token (see `_steps`)."""
        with torch.inference_mode(), attention_backends(self.model.device):
            yield from self._steps(inputs, max_new_tokens, cancel, min_new_tokens=min_new_tokens,
                                   conditions=conditions)

    def _steps(self, inputs: BatchFeature, max_new_tokens: int, cancel: CancelToken | None = None, *,
               min_new_tokens: int = 0, conditions: bool = True) -> Iterator[ReplyStep]:
        """Yield the reply to one prepared prompt (`prepare_inputs`, batch 1) token by token.

        min_new_tokens: <|im_end|> may not be drawn before this many reply tokens (benchmarks
        force reply lengths on random weights); conditions: compute the speech conditions (False:
        `condition` is None, for text-only replies)."""
        if inputs["input_ids"].shape[0] != 1:
            raise ValueError(f"ReplyDecoder decodes one conversation, got a batch of {inputs['input_ids'].shape[0]}")
        model = self.model
        inputs = inputs.to(model.device)
        length = int(inputs["input_ids"].shape[1])
        cache, graphed = self._new_cache(length + max_new_tokens + 1)
        model.vl.model.rope_deltas = None  # never reuse an earlier prompt's M-RoPE offset
        out = model(**inputs, cache=cache, use_cache=True, logits_to_keep=1)
        delta = model.vl.model.rope_deltas
        offset = int(delta.reshape(-1)[0]) if delta is not None else 0  # M-RoPE: text after media moves on
        token = self._draw(out.logits[:, -1], 0, min_new_tokens)  # [1, 1]
        empty = int(token) == self.eos_id
        position = torch.empty(3, 1, 1, dtype=torch.long, device=model.device)
        for i in range(max(1, max_new_tokens)):
            if cancel is not None:
                cancel.check()
            position.fill_(length + i + offset)
            if graphed is not None and not graphed.failed:
                hidden, logits = graphed(token, position)
                if graphed.failed:
                    self._graphs[graphed.length] = None
            else:
                hidden, logits = self._step(token, position, cache)
            condition = model.speech_condition(hidden, token)[0].clone() if conditions else None  # [1, H]
            following = self._draw(logits, i + 1, min_new_tokens)
            last = empty or i == max_new_tokens - 1 or int(following) == self.eos_id
            yield ReplyStep(int(token), condition, last, empty)
            if last:
                return
            token = following


class _GraphedStep:
    """The LLM decode step on one `StaticCache`, captured once as a CUDA graph and replayed.

    The cache keeps its tensors between replies (`reset` zeroes them in place), so the graph stays
    valid; the step's token and position are copied into static buffers before each replay. The
    first call warms up on a side stream (the warm-ups write one position past the cache's length
    and advance its length counters, which are put back), captures, then replays. If capturing
    raises, `failed` is set and the caller runs the eager step from then on.
    """

    def __init__(self, cache, forward_step):
        self.cache, self.forward_step = cache, forward_step
        self.length = cache.layers[0].max_cache_len
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False

    def _lengths(self) -> list[torch.Tensor]:
        return [layer.cumulative_length for layer in self.cache.layers]

    def _restore(self) -> None:
        """Put the cache's length counters back to where they were before the warm-ups."""
        for n, old in zip(self._lengths(), self.saved):
            n.copy_(old)

    def _capture(self, token: torch.Tensor, position: torch.Tensor) -> None:
        self.token, self.position = token.clone(), position.clone()
        self.saved = [n.clone() for n in self._lengths()]
        stream = torch.cuda.Stream(token.device)
        stream.wait_stream(torch.cuda.current_stream(token.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.forward_step(self.token, self.position, self.cache)
                self._restore()
        torch.cuda.current_stream(token.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.hidden, self.logits = self.forward_step(self.token, self.position, self.cache)
        self.graph = graph

    def __call__(self, token: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is None:
            try:
                self._capture(token, position)
            except Exception as err:  # noqa: BLE001 - any capture failure means: run eagerly
                log.warning("CUDA graph capture of the LLM decode step failed (%s); decoding eagerly", err)
                self.failed = True
                self._restore()
                return self.forward_step(token, position, self.cache)
        self.token.copy_(token)
        self.position.copy_(position)
        self.graph.replay()
        return self.hidden, self.logits
