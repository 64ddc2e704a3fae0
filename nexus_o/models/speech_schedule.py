"""Which reply tokens the speech decoder may read at each step: one schedule for training and generation.

The decoder sequence of one reply interleaves text slots (the projected LLM states of the reply
tokens, one slot per valid token; "stepwise" has none) with audio steps. Before audio step s the
first v(s) text tokens are in the sequence:

    text-then-speech (the paper):  v(s) = N                                  (all of the text first)
    streaming:                     v(s) = min(N, progress(s) + lookahead)

`progress(s)` is how far speech has got in the text: the pointer (the token spoken at frame s)
for the "pointer" alignment, s // steps_per_token for the others. Training reads progress off the
targets (the pointer from the word timings); generation from its own pointer, and runs step s
only once the LLM has produced tokens 0 .. v(s) - 1 and the token after them (or has ended), so
the decoder never waits for more than `lookahead` tokens and never sees a token it will not see
in training. `text_complete(s) = v(s) == N` tells the decoder that nothing more will come.

Slots are numbered in sequence order and are the rotary positions: text token j sits after the
steps that came before it, step s after the v(s) tokens before it. With v(s) = N this is the old
"prefix" layout exactly (tokens 0..N-1, then steps N, N + 1, ...).
"""

from __future__ import annotations

import torch


def step_progress(steps: torch.Tensor, steps_per_token: int) -> torch.Tensor:
    """steps [S] -> the text token each step has reached at a fixed rate, [S] ("prefix", "stepwise")."""
    return torch.div(steps, steps_per_token, rounding_mode="floor")


def visible_tokens(progress: torch.Tensor, counts: torch.Tensor, lookahead: int | None) -> torch.Tensor:
    """progress [B, S] (non-decreasing), counts [B] valid tokens -> v [B, S] tokens visible at each step.

    lookahead None: text-then-speech (every step sees all N tokens).
    """
    full = counts[:, None].expand_as(progress)
    return full if lookahead is None else torch.minimum(progress + lookahead, full)


def interleave_slots(visible: torch.Tensor, counts: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Slots of the text tokens and of the steps in each sample's interleaved sequence.

    visible [B, S] (non-decreasing), counts [B], width N >= max(counts) ->
    (text_slot [B, N], step_slot [B, S]); slots of sample b fill 0 .. counts[b] + S - 1 exactly
    once; padded tokens (j >= counts[b]) get the slots after that (never valid keys).
    """
    b, s = visible.shape
    j = torch.arange(width, device=visible.device)
    steps_before = (visible[:, None, :] <= j[None, :, None]).sum(dim=-1)  # [B, N]
    real = j[None] < counts[:, None]
    text_slot = torch.where(real, j[None] + steps_before, s + j[None])
    step_slot = torch.arange(s, device=visible.device)[None] + visible
    return text_slot, step_slot


def visible_count(progress: int, lookahead: int | None, known: int) -> int:
    """`visible_tokens` for one sample in generation, on host ints: `known` tokens have arrived (all N
    of them once the text has ended; before that, the run condition keeps progress + lookahead <= known)."""
    return known if lookahead is None else min(known, progress + lookahead)


def run_condition(progress: int, lookahead: int | None, known: int, ended: bool) -> bool:
    """May a generation step with this progress run? `known`: tokens whose states exist (the token
    after them has been sampled, so whether the text ends there is known); `ended`: the text is complete."""
    return ended or (lookahead is not None and known >= progress + lookahead)
