"""MusicGen's codebook delay pattern, as data, independent of any model.

A codec frame holds K codes, one per codebook. The decoder predicts them "delayed": codebook k
of frame t is emitted at step t + k, so T frames take T + K - 1 steps and, at every step, the
finer codebooks of a frame are predicted after its coarser ones. Steps with no code of a
codebook (the first k steps of codebook k, the last K - 1 - k ones) hold `pad_id`.

    frame codes  [B, K, T]  --build-->  delayed [B, K, T + K - 1]  --revert-->  [B, K, T]

`append_end` writes the end-of-speech convention of `nexus_o.models.speech_decoder`: frame
`length` of each sample is all `end_id`, later frames are `pad_id`.
"""

from __future__ import annotations

import torch


def _check_codes(codes: torch.Tensor, name: str) -> None:
    if codes.dim() != 3:
        raise ValueError(f"{name} must be [batch, codebooks, steps], got shape {tuple(codes.shape)}")
    if codes.shape[1] < 1:
        raise ValueError(f"{name} has no codebook (shape {tuple(codes.shape)})")


def build(codes: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Delay codebook k by k steps.

    codes: [B, K, T] frame-aligned codes.
    Returns delayed [B, K, T + K - 1]: `delayed[:, k, t + k] = codes[:, k, t]`, `pad_id` elsewhere.
    """
    _check_codes(codes, "codes")
    batch, num_codebooks, frames = codes.shape
    delayed = codes.new_full((batch, num_codebooks, frames + num_codebooks - 1), pad_id)
    for k in range(num_codebooks):
        delayed[:, k, k:k + frames] = codes[:, k]
    return delayed


def revert(delayed: torch.Tensor) -> torch.Tensor:
    """Undo `build`: delayed [B, K, S] (S >= K - 1) -> codes [B, K, S - K + 1].

    Works on any window of a delayed sequence that starts at a frame's step 0, which is what
    streaming needs: `revert(delayed[..., a:b + K - 1])` gives frames a..b-1.
    """
    _check_codes(delayed, "delayed")
    num_codebooks, steps = delayed.shape[1], delayed.shape[2]
    frames = steps - num_codebooks + 1
    if frames < 0:
        raise ValueError(f"a delayed sequence of {num_codebooks} codebooks needs at least "
                         f"{num_codebooks - 1} steps, got {steps}")
    return torch.stack([delayed[:, k, k:k + frames] for k in range(num_codebooks)], dim=1)


def valid_mask(num_codebooks: int, frames: int, device: torch.device | str | None = None) -> torch.Tensor:
    """bool [K, T + K - 1], true exactly where `build` puts a real code (not `pad_id`)."""
    if num_codebooks < 1 or frames < 0:
        raise ValueError(f"valid_mask needs num_codebooks >= 1 and frames >= 0, "
                         f"got num_codebooks={num_codebooks}, frames={frames}")
    step = torch.arange(frames + num_codebooks - 1, device=device)
    k = torch.arange(num_codebooks, device=device)[:, None]
    return (step >= k) & (step < k + frames)


def append_end(codes: torch.Tensor, lengths: torch.Tensor, end_id: int, pad_id: int) -> torch.Tensor:
    """Mark where each sample's speech ends.

    codes: [B, K, T] right-padded frames; lengths: [B], each in [0, T].
    Returns [B, K, T + 1]: frames < length copied, frame `length` all `end_id`, later frames
    `pad_id` (whatever `codes` held there is dropped, so padding can never leak into a model).
    """
    _check_codes(codes, "codes")
    frames = torch.arange(codes.shape[2] + 1, device=codes.device)[None, None, :]
    lengths = lengths.to(codes.device)[:, None, None]
    out = torch.cat([codes, codes.new_full(codes.shape[:2] + (1,), pad_id)], dim=2)
    out = torch.where(frames < lengths, out, torch.full_like(out, pad_id))
    return torch.where(frames == lengths, torch.full_like(out, end_id), out)
