"""Streaming speech output: codec frames (and waveform) as soon as the decoder has completed them.

With the delay pattern, frame t is complete once step t + K - 1 has been generated (its last
codebook comes K - 1 steps after its first). `stream_codes` hands out complete frames in
chunks of `chunk_frames`; `stream_audio` passes each chunk through the codec's incremental
decoder. Concatenating the chunks gives exactly what `SpeechDecoder.generate` returns for the
same inputs, options and random generator. A `CancelToken` is checked at every decoder step:
once it is cancelled, the stream raises `Cancelled`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from nexus_o.inference.cancel import CancelToken
from nexus_o.models.sampling import SamplingConfig
from nexus_o.models.speech_decoder import SpeechDecoder, undelay


def stream_codes(decoder: SpeechDecoder, llm_hidden: torch.Tensor, llm_mask: torch.Tensor | None = None, *,
                 chunk_frames: int = 8, max_frames: int | None = None, min_frames: int = 1,
                 sampling: SamplingConfig = SamplingConfig(), use_cache: bool = True,
                 generator: torch.Generator | None = None,
                 cancel: CancelToken | None = None) -> Iterator[torch.Tensor]:
    """Yield undelayed code chunks [B, K, chunk_frames] (the last one may be shorter).

    llm_hidden [B, N, llm_hidden_size], llm_mask [B, N]; the other options are those of
    `SpeechDecoder.generate_steps`. The stream ends when every sample has ended; in a batch, a
    sample that ended earlier gets `pad_id` frames until then.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames={chunk_frames} must be >= 1")
    k, pad_id = decoder.vocab.num_codebooks, decoder.vocab.pad_id
    window: list[torch.Tensor] = []  # delayed columns from step `emitted` on
    emitted, end_frames = 0, None
    steps = decoder.generate_steps(llm_hidden, llm_mask, max_frames=max_frames, min_frames=min_frames,
                                   sampling=sampling, use_cache=use_cache, generator=generator)
    for column, end_frames in steps:
        if cancel is not None:
            cancel.check()
        window.append(column)
        ready = len(window) - k + 1  # frames emitted .. emitted + ready - 1 are complete
        if bool((end_frames >= 0).all()):  # never hand out frames past the longest sample
            ready = min(ready, int(end_frames.max()) - emitted)
        if ready >= chunk_frames:
            yield undelay(torch.stack(window[:chunk_frames + k - 1], dim=2), end_frames, pad_id, emitted)
            window, emitted = window[chunk_frames:], emitted + chunk_frames
    total = int(end_frames.max())
    while emitted < total:
        size = min(chunk_frames, total - emitted)
        yield undelay(torch.stack(window[:size + k - 1], dim=2), end_frames, pad_id, emitted)
        window, emitted = window[size:], emitted + size


def stream_audio(decoder: SpeechDecoder, codec, llm_hidden: torch.Tensor, llm_mask: torch.Tensor | None = None, *,
                 chunk_frames: int = 8, max_frames: int | None = None, min_frames: int = 1,
                 sampling: SamplingConfig = SamplingConfig(), use_cache: bool = True,
                 generator: torch.Generator | None = None,
                 cancel: CancelToken | None = None) -> Iterator[torch.Tensor]:
    """Yield waveform chunks [1, 1, samples] of one reply (llm_hidden [1, N, llm_hidden_size]).

    `codec` is a `nexus_o.codecs.base.SpeechCodec`: each code chunk goes through
    `decode_incremental(chunk, state)`, which holds back the frames still waiting for their
    right context; a final `last=True` call flushes them. Empty chunks are not yielded.
    """
    decoder.check_codec(codec)
    if llm_hidden.dim() != 3 or llm_hidden.shape[0] != 1:
        raise ValueError(f"stream_audio streams one reply: llm_hidden must be [1, tokens, width], "
                         f"got {tuple(llm_hidden.shape)}")
    state, codes = None, None
    for codes in stream_codes(decoder, llm_hidden, llm_mask, chunk_frames=chunk_frames, max_frames=max_frames,
                              min_frames=min_frames, sampling=sampling, use_cache=use_cache, generator=generator,
                              cancel=cancel):
        wav, state = codec.decode_incremental(codes, state)
        if wav.shape[-1]:
            yield wav
    if state is not None:
        wav, state = codec.decode_incremental(codes[..., :0], state, last=True)
        if wav.shape[-1]:
            yield wav
