"""The LLM side of a reply, as the speech decoder reads it (training and generation alike)."""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class ReplyCondition:
    """Projected states of the reply tokens, in order, and how many there are.

    states: [B, N, D], sample b's tokens first (in order), zeros after.
    counts: [B] the reply's token count N. In generation, while the text is still arriving, it
        is the tokens known + 1: a bound that no visible count reaches until the text has ended
        (see `nexus_o.models.speech_generation`), so "the step sees the whole text" keeps its meaning.
    """

    states: torch.Tensor
    counts: torch.Tensor

    def token(self, index: torch.Tensor) -> torch.Tensor:
        """index [B, S] (the i-th token, clamped to the last) -> states [B, S, D]."""
        index = torch.minimum(index, self.counts[:, None] - 1).clamp(min=0)
        return self.states.gather(1, index[..., None].expand(-1, -1, self.states.shape[-1]))
