"""Per-codebook sampling of speech codes: frozen options plus small logit filters.

Every codebook of every sample is drawn independently from its own distribution. The decoder
first masks what may never be drawn (special ids), then calls `sample_codes`, then overwrites
the positions the delay pattern forces.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How codes are drawn from the decoder's logits.

    greedy: take the arg-max (the other options are then ignored).
    temperature: logits are divided by it before the filters; must be > 0.
    top_k: keep the k most likely ids per codebook (None: all).
    top_p: keep the smallest set of ids whose probability reaches top_p (None: all).
    """

    greedy: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"SamplingConfig.temperature={self.temperature} must be > 0 (use greedy=True)")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"SamplingConfig.top_k={self.top_k} must be >= 1 or None")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SamplingConfig.top_p={self.top_p} must be in (0, 1] or None")


def filter_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """logits [..., C] restricted to the nucleus: the fewest ids whose probability sums to >= p."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    # Drop an id when the ids ranked above it already reach p; the top id is always kept.
    drop_sorted = (probs.cumsum(dim=-1) - probs) >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample_codes(logits: torch.Tensor, options: SamplingConfig,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one id per row.

    logits: [B, K, C] (ids that may not be drawn already at -inf).
    Returns ids [B, K] (long).
    """
    if options.greedy:
        return logits.argmax(dim=-1)
    values, ids = logits.float() / options.temperature, None
    if options.top_k is not None and options.top_k < values.shape[-1]:
        # Sample among the k best only: cheaper than masking the full vocabulary every step.
        values, ids = torch.topk(values, options.top_k, dim=-1)
    if options.top_p is not None:
        values = filter_top_p(values, options.top_p)
    probs = values.softmax(dim=-1)
    choice = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
    choice = choice.reshape(probs.shape[:-1])
    return choice if ids is None else ids.gather(-1, choice[..., None])[..., 0]
