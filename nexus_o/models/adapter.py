"""The audio adapter: stack consecutive encoder frames, then two linear layers (paper §3.1)."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN


class AudioAdapter(nn.Module):
    """Maps audio encoder frames to LLM embeddings.

    `stack_frames` consecutive frames are concatenated (the last group zero-padded), so the
    first linear layer sees `stack_frames * input_size` features; the second maps to the LLM width.
    """

    def __init__(self, *, stack_frames: int, input_size: int, intermediate_size: int,
                 output_size: int, hidden_act: str = "gelu"):
        super().__init__()
        self.stack_frames = stack_frames
        self.linear_1 = nn.Linear(stack_frames * input_size, intermediate_size)
        self.act = ACT2FN[hidden_act]
        self.linear_2 = nn.Linear(intermediate_size, output_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [T, input_size] (one clip) -> tokens [ceil(T / stack_frames), output_size]."""
        pad = (-frames.shape[0]) % self.stack_frames
        if pad:
            frames = torch.cat([frames, frames.new_zeros(pad, frames.shape[1])])
        stacked = frames.reshape(-1, self.stack_frames * frames.shape[1])
        return self.linear_2(self.act(self.linear_1(stacked)))
