"""The one interface every speech codec implements, with its input checks and streaming decode.

Design choice: :class:`SpeechCodec` is a plain abstract class that *holds* its ``nn.Module`` parts,
not an ``nn.Module`` itself. The codec is frozen and loaded from its own checkpoint; if it were a
module, assigning it to an attribute of the omni model would silently register its weights in
the model's ``state_dict``, optimiser parameter groups and FSDP wrapping. Holding it as a plain
object keeps those weights out, and :meth:`SpeechCodec.to` still moves the parts between devices.

Backends implement four things: ``_encode``, ``_decode``, ``save_pretrained``/``from_pretrained``
and ``modules()``. The public ``encode``/``decode``/``decode_incremental`` here check their input
and give clear errors, so no backend repeats that code.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import soxr
import torch
from torch import nn


class CodecError(ValueError):
    """Bad input to a codec: wrong shape, range, rate or file."""


class CodecMismatchError(CodecError):
    """A model component and the codec it is paired with disagree (codebooks, entries, rate)."""


@dataclass
class DecodeState:
    """Streaming decode state, explicit so a server can keep one per request.

    ``tail`` holds the codes from global frame ``tail_start`` on: the left context the next
    window needs plus any frames still waiting for their right context.
    """

    tail: torch.Tensor  # [B, K, n] long
    tail_start: int
    frames_seen: int
    frames_emitted: int
    finished: bool = False


class SpeechCodec(ABC):
    """Waveform <-> discrete codes ``[B, K, T']``, ``K`` codebooks at ``frame_rate`` frames a second.

    Backends set, in ``__init__``: ``sample_rate``, ``samples_per_frame`` (audio samples per
    code frame), ``num_codebooks``, ``codebook_size`` (real entries per codebook; valid ids are
    ``0 .. codebook_size - 1``), and ``left_context`` / ``right_context``: how many code frames
    on each side can change a frame's audio (an upper bound on the decoder's receptive field),
    which the streaming decode uses.
    """

    name: ClassVar[str]
    sample_rate: int
    samples_per_frame: int
    num_codebooks: int
    codebook_size: int
    left_context: int
    right_context: int

    # --- what a backend implements -------------------------------------------------------------

    @abstractmethod
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Checked ``wav [B, 1, T]`` float at ``sample_rate`` -> codes ``[B, K, T']`` long."""

    @abstractmethod
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Checked codes ``[B, K, T']`` -> ``wav [B, 1, T' * samples_per_frame]``.

        Audio of frame ``j`` must be samples ``[j * samples_per_frame, (j + 1) * samples_per_frame)``
        and the decoder must be shift-equivariant by whole frames: streaming relies on both.
        """

    @abstractmethod
    def modules(self) -> Iterator[nn.Module]:
        """The torch modules this codec holds (for ``to``/``device``)."""

    @abstractmethod
    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``codec_config.json`` and safetensors weights to ``directory`` (never pickle)."""

    @classmethod
    @abstractmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> SpeechCodec:
        """Load what :meth:`save_pretrained` wrote."""

    # --- shared behaviour ----------------------------------------------------------------------

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return self.sample_rate / self.samples_per_frame

    @property
    def device(self) -> torch.device:
        for module in self.modules():
            for tensor in itertools.chain(module.parameters(), module.buffers()):
                return tensor.device
        return torch.device("cpu")

    def to(self, device: str | torch.device) -> SpeechCodec:
        for module in self.modules():
            module.to(device)
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, sample_rate={self.sample_rate}, "
            f"frame_rate={self.frame_rate:.2f}, num_codebooks={self.num_codebooks}, "
            f"codebook_size={self.codebook_size})"
        )

    # no_grad, not inference_mode: codes often become training targets, and inference tensors
    # cannot be saved for backward.
    @torch.no_grad()
    def encode(self, wav: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """``wav [B, 1, T]`` float in [-1, 1] -> codes ``[B, K, T']`` long.

        ``sample_rate`` is the rate of ``wav``; when given and different from the codec's, the
        audio is resampled with soxr (high quality). When omitted, ``wav`` must already be at
        ``self.sample_rate``: the codec cannot detect a wrong rate, so pass it when unsure.
        """
        self._check_wav(wav)
        if sample_rate is not None and sample_rate != self.sample_rate:
            wav = resample(wav, sample_rate, self.sample_rate)
        return self._encode(wav.to(self.device, torch.float32))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, T']`` -> ``wav [B, 1, T' * samples_per_frame]`` float at ``sample_rate``."""
        self._check_codes(codes, allow_empty=False)
        return self._decode(codes.to(self.device, torch.long))

    @torch.no_grad()
    def decode_incremental(
        self, codes_chunk: torch.Tensor, state: DecodeState | None = None, *, last: bool = False
    ) -> tuple[torch.Tensor, DecodeState]:
        """Decode codes as they arrive: ``codes_chunk [B, K, t]`` -> ``(wav_chunk [B, 1, n], state)``.

        Each call emits the audio of every frame whose right context (``right_context`` frames)
        has arrived; ``last=True`` flushes the rest. Audio is computed on a window that starts
        ``left_context`` frames before the first new frame, so the concatenated chunks equal
        :meth:`decode` on the whole sequence up to float rounding (the same sums evaluated on
        different-length inputs: ~1e-7 in practice, tests check ``atol=1e-5``). Chunks may be empty (``t = 0``),
        e.g. to flush with ``last=True``. Latency: ``right_context`` frames.
        """
        self._check_codes(codes_chunk, allow_empty=True)
        codes_chunk = codes_chunk.to(self.device, torch.long)
        if state is None:
            state = DecodeState(tail=codes_chunk[..., :0], tail_start=0, frames_seen=0, frames_emitted=0)
        elif state.finished:
            raise CodecError("decode_incremental: this stream was already finished with last=True")
        elif state.tail.shape[:2] != codes_chunk.shape[:2]:
            raise CodecError(
                f"decode_incremental: chunk has batch/codebooks {tuple(codes_chunk.shape[:2])} "
                f"but the stream started with {tuple(state.tail.shape[:2])}"
            )
        buffer = torch.cat([state.tail, codes_chunk], dim=-1)
        seen = state.frames_seen + codes_chunk.shape[-1]
        if last and seen == 0:
            raise CodecError("decode_incremental: empty code sequence (no frames before last=True)")
        end = seen if last else max(state.frames_emitted, seen - self.right_context)
        wav = buffer.new_zeros((buffer.shape[0], 1, 0), dtype=torch.float32)
        if end > state.frames_emitted:
            window_start = max(0, state.frames_emitted - self.left_context)
            window = buffer[..., window_start - state.tail_start :]
            audio = self._decode(window)
            offset = (state.frames_emitted - window_start) * self.samples_per_frame
            wav = audio[..., offset : offset + (end - state.frames_emitted) * self.samples_per_frame]
        keep_from = max(0, end - self.left_context)
        new_state = DecodeState(
            tail=buffer[..., keep_from - state.tail_start :],
            tail_start=keep_from,
            frames_seen=seen,
            frames_emitted=end,
            finished=last,
        )
        return wav, new_state

    # --- input checks --------------------------------------------------------------------------

    def _check_wav(self, wav: torch.Tensor) -> None:
        if not isinstance(wav, torch.Tensor):
            raise CodecError(f"{self.name} codec: wav must be a torch.Tensor [B, 1, T], got {type(wav).__name__}")
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise CodecError(f"{self.name} codec: wav must have shape [B, 1, T] (mono), got {tuple(wav.shape)}")
        if not wav.is_floating_point():
            raise CodecError(f"{self.name} codec: wav must be float in [-1, 1], got dtype {wav.dtype}")
        if wav.shape[0] == 0 or wav.shape[-1] == 0:
            raise CodecError(f"{self.name} codec: empty audio, shape {tuple(wav.shape)}")

    def _check_codes(self, codes: torch.Tensor, *, allow_empty: bool) -> None:
        if not isinstance(codes, torch.Tensor):
            raise CodecError(f"{self.name} codec: codes must be a torch.Tensor [B, K, T], got {type(codes).__name__}")
        if codes.dim() != 3:
            raise CodecError(f"{self.name} codec: codes must have shape [B, K, T], got {tuple(codes.shape)}")
        if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
            raise CodecError(f"{self.name} codec: codes must be an integer tensor, got dtype {codes.dtype}")
        if codes.shape[1] != self.num_codebooks:
            raise CodecError(
                f"{self.name} codec: codes have {codes.shape[1]} codebooks but the codec has {self.num_codebooks}"
            )
        if codes.shape[-1] == 0:
            if allow_empty:
                return
            raise CodecError(f"{self.name} codec: empty code sequence, shape {tuple(codes.shape)}")
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high >= self.codebook_size:
            raise CodecError(
                f"{self.name} codec: code ids must lie in [0, {self.codebook_size}), got min {low}, max {high}"
                " (ids reserved for BOS/pad must be removed before decoding)"
            )


def resample(wav: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample ``wav [B, 1, T]`` with soxr (VHQ); batch items are resampled as channels."""
    if orig_rate <= 0 or new_rate <= 0:
        raise CodecError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    array = wav[:, 0].detach().to("cpu", torch.float64).numpy().T  # soxr wants [T, channels]
    out = soxr.resample(np.ascontiguousarray(array), orig_rate, new_rate, quality="VHQ")
    return torch.from_numpy(np.ascontiguousarray(out.T)).to(wav.dtype)[:, None]


def check_codec_matches(
    codec: SpeechCodec,
    num_codebooks: int,
    codebook_size: int,
    sample_rate: int | None = None,
    *,
    component: str = "speech decoder",
) -> None:
    """Raise :class:`CodecMismatchError` naming both sides if ``component`` cannot drive ``codec``.

    ``codebook_size`` is the component's vocabulary per codebook; it may exceed the codec's real
    entries (the extra ids hold BOS/pad, as NEXUS-O's 1024 over FireFly's 1000) but not fall short.
    """
    problems = []
    if num_codebooks != codec.num_codebooks:
        problems.append(
            f"{component} has {num_codebooks} codebooks but codec '{codec.name}' has {codec.num_codebooks}"
        )
    if codebook_size < codec.codebook_size:
        problems.append(
            f"{component} has {codebook_size} entries per codebook but codec '{codec.name}' "
            f"emits ids up to {codec.codebook_size - 1} ({codec.codebook_size} entries)"
        )
    if sample_rate is not None and sample_rate != codec.sample_rate:
        problems.append(
            f"{component} expects {sample_rate} Hz audio but codec '{codec.name}' runs at {codec.sample_rate} Hz"
        )
    if problems:
        raise CodecMismatchError("; ".join(problems))
