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


class FrameChunker:
    """Delayed columns in, complete undelayed frame chunks out.

    Frame t is complete once step t + K - 1 has run. `push` returns a chunk [B, K, chunk_frames]
    whenever one is complete (reading end_frames then: one device sync a chunk, none a step);
    `flush` returns what is left once generation has stopped. Frames at or past a sample's end
    are `pad_id`; no chunk reaches past the longest sample.
    """

    def __init__(self, num_codebooks: int, pad_id: int, chunk_frames: int):
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames={chunk_frames} must be >= 1")
        self.k, self.pad_id, self.chunk_frames = num_codebooks, pad_id, chunk_frames
        self.window: list[torch.Tensor] = []  # delayed columns [B, K] from step `emitted` on
        self.emitted = 0

    def _take(self, size: int, end_frames: torch.Tensor) -> torch.Tensor:
        chunk = undelay(torch.stack(self.window[:size + self.k - 1], dim=2), end_frames, self.pad_id, self.emitted)
        self.window, self.emitted = self.window[size:], self.emitted + size
        return chunk

    def push(self, column: torch.Tensor, end_frames: torch.Tensor) -> torch.Tensor | None:
        """Add step column [B, K] (end_frames [B] as after it); return a complete chunk or None."""
        self.window.append(column)
        if len(self.window) - self.k + 1 < self.chunk_frames:
            return None
        ends = end_frames.tolist()
        if min(ends) >= 0 and max(ends) - self.emitted < self.chunk_frames:
            return None  # the rest is shorter than a chunk: `flush` hands it out
        return self._take(self.chunk_frames, end_frames)

    def flush(self, end_frames: torch.Tensor) -> Iterator[torch.Tensor]:
        """The remaining frames up to the longest sample's end, in chunks."""
        total = int(end_frames.max())
        while self.emitted < total:
            yield self._take(min(self.chunk_frames, total - self.emitted), end_frames)


def stream_codes(decoder: SpeechDecoder, llm_hidden: torch.Tensor, llm_mask: torch.Tensor | None = None, *,
                 chunk_frames: int = 8, max_frames: int | None = None, min_frames: int = 1,
                 sampling: SamplingConfig = SamplingConfig(), generator: torch.Generator | None = None,
                 cancel: CancelToken | None = None) -> Iterator[torch.Tensor]:
    """Yield undelayed code chunks [B, K, chunk_frames] (the last one may be shorter).

    llm_hidden [B, N, llm_hidden_size], llm_mask [B, N]; the other options are those of
    `SpeechDecoder.generate_steps`. The stream ends when every sample has ended; in a batch, a
    sample that ended earlier gets `pad_id` frames until then.
    """
    chunker = FrameChunker(decoder.vocab.num_codebooks, decoder.vocab.pad_id, chunk_frames)
    end_frames = None
    for column, end_frames in decoder.generate_steps(llm_hidden, llm_mask, max_frames=max_frames,
                                                     min_frames=min_frames, sampling=sampling, generator=generator,
                                                     check_every=chunk_frames):
        if cancel is not None:
            cancel.check()
        chunk = chunker.push(column, end_frames)
        if chunk is not None:
            yield chunk
    yield from chunker.flush(end_frames)


def stream_audio(decoder: SpeechDecoder, codec, llm_hidden: torch.Tensor, llm_mask: torch.Tensor | None = None, *,
                 chunk_frames: int = 8, max_frames: int | None = None, min_frames: int = 1,
                 sampling: SamplingConfig = SamplingConfig(), generator: torch.Generator | None = None,
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
    render = AudioRenderer(codec)
    for codes in stream_codes(decoder, llm_hidden, llm_mask, chunk_frames=chunk_frames, max_frames=max_frames,
                              min_frames=min_frames, sampling=sampling, generator=generator,
                              cancel=cancel):
        yield from render.push(codes)
    yield from render.flush()


class AudioRenderer:
    """Code chunks [1, K, T] in, waveform chunks [1, 1, samples] out, through the codec's
    `decode_incremental` (it holds back frames still waiting for their right context; `flush`
    renders them). Empty waveform chunks are not handed out."""

    def __init__(self, codec):
        self.codec, self.state, self.last_codes = codec, None, None

    def push(self, codes: torch.Tensor) -> Iterator[torch.Tensor]:
        self.last_codes = codes
        wav, self.state = self.codec.decode_incremental(codes, self.state)
        if wav.shape[-1]:
            yield wav

    def flush(self) -> Iterator[torch.Tensor]:
        if self.state is not None:
            wav, self.state = self.codec.decode_incremental(self.last_codes[..., :0], self.state, last=True)
            if wav.shape[-1]:
                yield wav
