"""The LLM's reply token by token, each with the speech decoder's condition for it.

`reply_steps` prefills the prompt once, then decodes greedily one token a step through the
language model with a KV cache. Each step reads one reply token and so yields it together with
its last hidden state turned into the speech condition (`speech_condition`: the same states the
stage-3 collator trains on, without a second pass over prompt + reply), and whether the reply
ends after it (the token drawn next is <|im_end|>, or the budget is spent). An empty reply yields
<|im_end|> itself, as the processor's `reply_mask` does.

On CUDA the cache is a `StaticCache` (fixed shapes) and the step can be compiled
(`compile_step=True`: CUDA graphs through torch.compile's "reduce-overhead").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import BatchFeature, DynamicCache, StaticCache

from nexus_o.inference.cancel import CancelToken


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

    static_cache: a fixed-shape cache (default: on CUDA); compile_step: torch.compile the decode
    step (default: off; on CUDA it pays once the model is warm, see `warm_up`).
    """

    def __init__(self, model, eos_id: int, *, static_cache: bool | None = None, compile_step: bool = False):
        self.model, self.eos_id = model, eos_id
        self.static_cache = model.device.type == "cuda" if static_cache is None else static_cache
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
        text = self.model.config.vl_config.text_config
        if self.static_cache:
            return StaticCache(config=text, max_cache_len=length)
        return DynamicCache(config=text)

    @torch.inference_mode()
    def steps(self, inputs: BatchFeature, max_new_tokens: int, cancel: CancelToken | None = None, *,
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
        cache = self._new_cache(length + max_new_tokens + 1)
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
            hidden, logits = self._step(token, position, cache)
            condition = model.speech_condition(hidden, token)[0].clone() if conditions else None  # [1, H]
            following = self._draw(logits, i + 1, min_new_tokens)
            last = empty or i == max_new_tokens - 1 or int(following) == self.eos_id
            yield ReplyStep(int(token), condition, last, empty)
            if last:
                return
            token = following
