"""Audio lengths, windows and token counts: the arithmetic shared by processor and model.

A clip of `n` samples at 16 kHz is cut into windows of the audio encoder's length (Whisper:
3000 mel frames = 30 s). Each window gives `ceil(valid_samples / hop)` valid mel frames, the
encoder's stride-2 convolution halves them (`(f - 1) // 2 + 1`), the valid encoder frames of all
windows are concatenated, and the adapter stacks `stack_frames` of them into one token (the last
group zero-padded), so no audio is ever dropped. At Whisper's 50 frames a second and 5 frames a
token that is 10 tokens a second.
"""

from __future__ import annotations

import math

SAMPLE_RATE = 16_000
HOP_LENGTH = 160


def window_samples(max_source_positions: int, hop_length: int = HOP_LENGTH) -> int:
    """Samples in one encoder window: the encoder sees `2 * max_source_positions` mel frames."""
    return 2 * max_source_positions * hop_length


def split_windows(num_samples: int, window: int) -> list[int]:
    """Valid sample counts of the windows a clip of `num_samples` is cut into (last one partial)."""
    if num_samples <= 0:
        raise ValueError(f"audio clip is empty ({num_samples} samples); nothing to encode")
    full, rest = divmod(num_samples, window)
    return [window] * full + ([rest] if rest else [])


def mel_frames(num_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Valid mel frames of `num_samples` samples (Whisper's feature attention mask length)."""
    return math.ceil(num_samples / hop_length)


def encoder_frames(num_mel_frames: int) -> int:
    """Encoder output frames after Whisper's conv (kernel 3, stride 2, padding 1)."""
    return (num_mel_frames - 1) // 2 + 1


def audio_token_count(num_samples: int, max_source_positions: int = 1500, stack_frames: int = 5,
                      hop_length: int = HOP_LENGTH) -> int:
    """Number of audio placeholder tokens for a clip of `num_samples` samples at 16 kHz."""
    window = window_samples(max_source_positions, hop_length)
    frames = sum(encoder_frames(mel_frames(n, hop_length))
                 for n in split_windows(num_samples, window))
    return math.ceil(frames / stack_frames)
