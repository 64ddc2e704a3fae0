"""The LLM's reply token by token, each with the speech decoder's condition for it.

`ReplyDecoder` prefills the prompt once, then decodes greedily one token a step through the
language model with a KV cache. Prompts that arrive together decode as one batch
(`batch_steps`: left-padded rows, each row's own M-RoPE offset and budget; a row that ends or is
cancelled stops yielding while the others go on), which reads the weights once a step for all
of them. Each step reads one reply token and so yields it together with
its last hidden state turned into the speech condition (`speech_condition`: the same states the
stage-3 collator trains on, without a second pass over prompt + reply), and whether the reply
ends after it (the token drawn next is <|im_end|>, or the budget is spent). An empty reply yields
<|im_end|> itself, as the processor's `reply_mask` does.

On CUDA the cache is a `StaticCache` (fixed shapes, kept and reset between replies of the same
capacity bucket and batch size) and the decode step is captured once in a CUDA graph and replayed: one launch
a token instead of one per kernel (`step_graph`; a capture that fails falls back to eager, with
a warning). `compile_step=True` also compiles the step with torch.compile (fused elementwise
kernels; the CUDA graph then replays those).

On CUDA, prefill and decoding run with PyTorch's cuDNN attention backend switched off (flash,
memory-efficient and math stay): with the static cache's explicit mask, cuDNN took 141 ms for
the 7B preset's 424-token prefill where the others take 72 ms (H200, docs/performance.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import BatchFeature, DynamicCache, StaticCache

from nexus_o.inference.cancel import CancelToken

log = logging.getLogger(__name__)
CACHE_BUCKET = 512  # static caches come in multiples of this many tokens (reused between replies)
MAX_GRAPHS = 8  # decode-step graphs (with their static caches) kept per model, the least recently used go
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
    """Greedy decoding of replies with per-token speech conditions (see the module doc): one
    prompt (`steps`) or a batch of left-padded prompts decoded together (`batch_steps`).

    static_cache: a fixed-shape cache (default: on CUDA); step_graph: replay the decode step as a
    CUDA graph (default: on CUDA with a static cache); compile_step: torch.compile the step
    (inductor, one graph; captured in the CUDA graph where step_graph is on).
    """

    def __init__(self, model, eos_id: int, *, static_cache: bool | None = None, step_graph: bool | None = None,
                 compile_step: bool = False):
        self.model, self.eos_id = model, eos_id
        cuda = model.device.type == "cuda"
        self.static_cache = cuda if static_cache is None else static_cache
        self.step_graph = (cuda and self.static_cache) if step_graph is None else step_graph
        # Per (rows, cache length, masked, compiled), kept on the model so every chat session reuses them,
        # the MAX_GRAPHS used last (each holds its static cache); None: capture failed.
        self._graphs: OrderedDict[tuple[int, int, bool, bool], _GraphedStep | None] = \
            model.__dict__.setdefault("_reply_step_graphs", OrderedDict())
        language = model.vl.model.language_model
        self._language, self._head = language, model.vl.lm_head
        # Compiled: one graph (fullgraph: a break is an error), elementwise work fused by inductor;
        # the CUDA graph (step_graph) then captures the compiled kernels, so both apply.
        self._step = torch.compile(self._forward_step, fullgraph=True, dynamic=False) \
            if compile_step else self._forward_step

    def _forward_step(self, token: torch.Tensor, position: torch.Tensor, cache,
                      mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """token [B, 1], position [3, B, 1], mask [B, K] (1: a real token; None: no padding)
        -> (last hidden [B, 1, H], logits [B, V])."""
        embeds = self._language.embed_tokens(token)
        hidden = self._language(inputs_embeds=embeds, attention_mask=mask, position_ids=position, cache=cache,
                                use_cache=True).last_hidden_state
        return hidden, self._head(hidden)[:, -1]

    def _draw(self, logits: torch.Tensor, index: int, min_new_tokens: int) -> torch.Tensor:
        """Greedy tokens [B, 1] from logits [B, V] for reply position `index`."""
        if index < min_new_tokens:
            logits = logits.clone()
            logits[:, self.eos_id] = -torch.inf
        return logits.argmax(dim=-1, keepdim=True)

    def _new_cache(self, rows: int, length: int, masked: bool):
        """(cache, graphed step or None) for `rows` prompts + replies in `length` positions (a
        multiple of CACHE_BUCKET for a static cache); masked: the step takes an attention mask."""
        text = self.model.config.vl_config.text_config
        if not self.static_cache:
            return DynamicCache(config=text), None
        if not self.step_graph:
            return StaticCache(config=text, max_cache_len=length), None
        key = (rows, length, masked, self._step is not self._forward_step)
        if key in self._graphs:
            self._graphs.move_to_end(key)
        graphed = self._graphs.get(key)
        if graphed is not None:
            graphed.cache.reset()
            return graphed.cache, graphed
        if key in self._graphs:  # capture failed before: eager on a fresh cache
            return StaticCache(config=text, max_cache_len=length), None
        graphed = _GraphedStep(StaticCache(config=text, max_cache_len=length), self._step, key)
        self._graphs[key] = graphed
        while len(self._graphs) > MAX_GRAPHS:
            self._graphs.popitem(last=False)
        return graphed.cache, graphed

    def steps(self, inputs: BatchFeature, max_new_tokens: int, cancel: CancelToken | None = None, *,
              min_new_tokens: int = 0, conditions: bool = True) -> Iterator[ReplyStep]:
        """Yield the reply to one prepared prompt (`prepare_inputs`, batch 1) token by token (see
        `batch_steps`)."""
        if inputs["input_ids"].shape[0] != 1:
            raise ValueError(f"ReplyDecoder.steps decodes one conversation, got a batch of "
                             f"{inputs['input_ids'].shape[0]} (use batch_steps)")
        for row in self.batch_steps(inputs, max_new_tokens, cancel, min_new_tokens=min_new_tokens,
                                    conditions=conditions):
            yield row[0]

    def batch_steps(self, inputs: BatchFeature, max_new_tokens: int | Sequence[int],
                    cancel: CancelToken | None = None, *, row_cancels: Sequence[CancelToken | None] | None = None,
                    min_new_tokens: int = 0, conditions: bool = True) -> Iterator[list[ReplyStep | None]]:
        """Decode the replies to B prepared prompts together (`prepare_inputs` or
        `processing.batching.join_rows`: input_ids [B, L], left-padded, attention_mask [B, L]).

        Yields, once per decoding step, one item per row: that row's `ReplyStep`, or None once its
        reply has ended (or its `row_cancels` token was cancelled: the row stops, the others go
        on). Stops when every row has ended. max_new_tokens: one budget, or one per row;
        min_new_tokens: <|im_end|> may not be drawn before this many reply tokens (benchmarks force
        reply lengths on random weights); conditions: compute the speech conditions (False:
        `condition` is None, for text-only replies); cancel: checked before each step, stops the
        whole batch (`Cancelled`).
        """
        with torch.inference_mode(), attention_backends(self.model.device):
            yield from self._batch_steps(inputs, max_new_tokens, cancel, row_cancels, min_new_tokens, conditions)

    def _batch_steps(self, inputs, max_new_tokens, cancel, row_cancels, min_new_tokens, conditions):
        model = self.model
        inputs = inputs.to(model.device)
        rows, length = (int(n) for n in inputs["input_ids"].shape)
        limits = [int(max_new_tokens)] * rows if isinstance(max_new_tokens, int) else [int(n) for n in max_new_tokens]
        if len(limits) != rows or (row_cancels is not None and len(row_cancels) != rows):
            raise ValueError(f"{rows} prompts but {len(limits)} budgets"
                             + ("" if row_cancels is None else f" and {len(row_cancels)} cancel tokens"))
        prompt_mask = inputs.get("attention_mask")
        # Several rows always pass a mask (one graph per row count, padded or not).
        masked = prompt_mask is not None and (rows > 1 or not bool(prompt_mask.all()))
        capacity = length + max(limits) + 1
        if self.static_cache:
            capacity = -(-capacity // CACHE_BUCKET) * CACHE_BUCKET
        cache, graphed = self._new_cache(rows, capacity, masked)
        mask = None
        if masked:  # [B, capacity]: each prompt's padding, then every reply position real
            mask = torch.ones(rows, capacity, dtype=prompt_mask.dtype, device=model.device)
            mask[:, :length] = prompt_mask
        model.vl.model.rope_deltas = None  # never reuse an earlier prompt's M-RoPE offset
        out = model(**inputs, cache=cache, use_cache=True, logits_to_keep=1)
        # Row b's reply token i sits at M-RoPE position n_b + i + delta_b. With media in the batch,
        # transformers numbers each row's real tokens from 0 (`get_rope_index`: n_b its real tokens,
        # delta_b [B, 1] how far its media moved the text on); without, positions are the padded
        # indices (n_b = L, no delta): relative distances, all RoPE sees, are the same either way.
        delta = model.vl.model.rope_deltas
        base = (prompt_mask.sum(dim=1) if prompt_mask is not None and delta is not None
                else torch.full((rows,), length, device=model.device)).to(torch.long)
        if delta is not None:
            base = base + delta.reshape(-1).to(model.device, torch.long).expand(rows)
        base = base.view(1, rows, 1).expand(3, rows, 1)
        token = self._draw(out.logits[:, -1], 0, min_new_tokens)  # [B, 1]
        tokens = token[:, 0].tolist()
        empty = [t == self.eos_id for t in tokens]
        ended = [False] * rows
        position = torch.empty(3, rows, 1, dtype=torch.long, device=model.device)
        for i in range(max(1, max(limits))):
            if cancel is not None:
                cancel.check()
            for row, token_of_row in enumerate(row_cancels or ()):
                ended[row] = ended[row] or (token_of_row is not None and token_of_row.cancelled)
            if all(ended):
                return
            torch.add(base, i, out=position)
            step_mask = mask if mask is None or self.static_cache else mask[:, : length + i + 1]
            if graphed is not None and not graphed.failed:
                hidden, logits = graphed(token, position, step_mask)
                if graphed.failed:
                    self._graphs[graphed.key] = None
            else:
                hidden, logits = self._step(token, position, cache, step_mask)
            condition = model.speech_condition(hidden, token)[:, 0].clone() if conditions else None  # [B, H]
            following = self._draw(logits, i + 1, min_new_tokens)
            drawn = following[:, 0].tolist()
            row_steps: list[ReplyStep | None] = []
            for row in range(rows):
                if ended[row]:
                    row_steps.append(None)
                    continue
                last = empty[row] or i >= limits[row] - 1 or drawn[row] == self.eos_id
                row_condition = None if condition is None else condition[row: row + 1]
                row_steps.append(ReplyStep(tokens[row], row_condition, last, empty[row]))
                ended[row] = last
            yield row_steps
            if all(ended):
                return
            token, tokens = following, drawn


class _GraphedStep:
    """The LLM decode step on one `StaticCache`, captured once as a CUDA graph and replayed.

    The cache keeps its tensors between replies (`reset` zeroes them in place), so the graph stays
    valid; the step's token, position and mask (when prompts are padded) are copied into static
    buffers before each replay. One graph serves one (rows, cache length, masked, compiled) key. The
    first call warms up on a side stream (the warm-ups write one position past the cache's length
    and advance its length counters, which are put back), captures, then replays. If capturing
    raises, `failed` is set and the caller runs the eager step from then on.
    """

    def __init__(self, cache, forward_step, key: tuple[int, int, bool, bool]):
        self.cache, self.forward_step, self.key = cache, forward_step, key
        self.length = cache.layers[0].max_cache_len
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False

    def _lengths(self) -> list[torch.Tensor]:
        return [layer.cumulative_length for layer in self.cache.layers]

    def _restore(self) -> None:
        """Put the cache's length counters back to where they were before the warm-ups."""
        for n, old in zip(self._lengths(), self.saved):
            n.copy_(old)

    def _capture(self, token: torch.Tensor, position: torch.Tensor, mask: torch.Tensor | None) -> None:
        self.token, self.position = token.clone(), position.clone()
        self.mask = None if mask is None else mask.clone()
        self.saved = [n.clone() for n in self._lengths()]
        stream = torch.cuda.Stream(token.device)
        stream.wait_stream(torch.cuda.current_stream(token.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.forward_step(self.token, self.position, self.cache, self.mask)
                self._restore()
        torch.cuda.current_stream(token.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.hidden, self.logits = self.forward_step(self.token, self.position, self.cache, self.mask)
        self.graph = graph

    def __call__(self, token: torch.Tensor, position: torch.Tensor,
                 mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """token [B, 1], position [3, B, 1], mask [B, cache length] or None (as captured)."""
        if self.graph is None:
            try:
                self._capture(token, position, mask)
            except Exception as err:  # noqa: BLE001 - any capture failure means: run eagerly
                log.warning("CUDA graph capture of the LLM decode step failed (%s); decoding eagerly", err)
                self.failed = True
                self._restore()
                return self.forward_step(token, position, self.cache, mask)
        self.token.copy_(token)
        self.position.copy_(position)
        if mask is not None:
            self.mask.copy_(mask)
        self.graph.replay()
        return self.hidden, self.logits
