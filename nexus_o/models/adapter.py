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

    def forward(self, clips: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """clips: one clip's frames [T, input_size], or a list of clips [T_i, input_size]
        -> tokens [sum_i ceil(T_i / stack_frames), output_size], clips in order.

        Each clip is stacked on its own; then all clips pass the layers in one call, so a batch
        calls them once whatever its clip count (ZeRO-3's parameter trace needs every rank to
        call the same modules the same number of times).
        """
        if torch.is_tensor(clips):
            clips = [clips]
        stacked = torch.cat([self._stack(frames) for frames in clips])
        return self.linear_2(self.act(self.linear_1(stacked)))

    def _stack(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [T, input_size] -> [ceil(T / stack_frames), stack_frames * input_size]."""
        pad = (-frames.shape[0]) % self.stack_frames
        if pad:
            frames = torch.cat([frames, frames.new_zeros(pad, frames.shape[1])])
        return frames.reshape(-1, self.stack_frames * frames.shape[1])
