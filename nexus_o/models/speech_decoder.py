"""The autoregressive speech decoder (paper §3.1): LLM hidden states -> K codebooks of codec codes.

A small decoder-only transformer runs over the *delayed* codec frames (`delay_pattern`): step s
predicts codebook k of frame s - k with K heads. The input of step s is the mean of the K code
embeddings of step s - 1 (at s = 0, of `start_id` on every codebook: the learned start
embedding) plus a projection of an LLM hidden state. Which LLM state meets which step is the
`alignment` (the paper leaves it open):

- "prefix" (default): the projected states of the reply text h_1..h_N come first in the decoder
  sequence (attended causally, no loss) and every step adds proj(h_N), the last language
  embedding. Attention learns the text-to-audio alignment itself, so nothing assumes a speaking
  rate, the audio length need not be known, and audio streams as soon as the text is done.
- "stepwise": no prefix; step s adds proj(h_min(s // steps_per_token, N - 1)), the literal
  reading of "the hidden state of the LLM at the current time step".
- "pointer": the prefix of "prefix", and step s adds proj(h_p(s)), the token being spoken at
  frame s, plus a look-ahead term W proj(h_p(s)+1) for the token after it (zero past the last):
  a word split into tokens ("t" + "wo") must not be started before its later tokens are known.
  The pointer p starts on the first token; after each step an advance head (one logit)
  says whether the next frame starts the next token. Training takes p from the targets' word
  timings (`token_index`, see `nexus_o.processing.word_alignment`) and adds the head's binary
  cross-entropy; generation moves p itself, and codebook 0 may only end once p is on the last
  token. With the token in every step's input the decoder never has to find its place in the
  text by attention, which small models and small data learn slowly (a tiny model speaks single
  words long before it can speak unseen word pairs with "prefix").

`llm_mask` may pad the text on either side (any 0/1 mask works: valid tokens keep their order);
`codes` are right-padded with per-sample `code_lengths`. The end convention (`end_id` on every
codebook at frame T) and the special ids are described in `speech_decoder_config`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nexus_o.codecs.base import CodecMismatchError, check_codec_matches
from nexus_o.models import delay_pattern
from nexus_o.models.sampling import SamplingConfig
from nexus_o.models.speech_condition import ReplyCondition
from nexus_o.models.speech_generation import SpeechGeneration
from nexus_o.models.speech_decoder_config import SpeechDecoderConfig
from nexus_o.models.speech_schedule import interleave_slots, step_progress, visible_tokens
from nexus_o.models.speech_transformer import CausalTransformer


@dataclasses.dataclass(frozen=True)
class CodeVocab:
    """The ids of each codebook table: real entries `0 .. codec_entries - 1`, then the specials."""

    num_codebooks: int
    codebook_size: int
    codec_entries: int
    start_id: int
    pad_id: int
    end_id: int


@dataclasses.dataclass
class SpeechDecoderOutput:
    """loss: scalar, mean of `per_codebook_loss` [K] (+ weighted `advance_loss`, "pointer");
    logits: [B, K, T + K, codebook_size]."""

    loss: torch.Tensor
    per_codebook_loss: torch.Tensor
    logits: torch.Tensor
    advance_loss: torch.Tensor | None = None


class GeneratedSpeech(NamedTuple):
    """codes: [B, K, T] undelayed, `pad_id` from each sample's length on; lengths: [B] frames."""

    codes: torch.Tensor
    lengths: torch.Tensor


def undelay(delayed: torch.Tensor, end_frames: torch.Tensor, pad_id: int, first_frame: int = 0) -> torch.Tensor:
    """delayed [B, K, S] -> codes [B, K, S - K + 1] with `pad_id` on frames at or past each end.

    end_frames: [B] frame count of each sample, -1 where not known yet; `first_frame` is the
    frame index of the window's first frame (streaming).
    """
    codes = delay_pattern.revert(delayed)
    frame = first_frame + torch.arange(codes.shape[2], device=codes.device)
    past = (end_frames[:, None] >= 0) & (frame[None] >= end_frames[:, None])
    return codes.masked_fill(past[:, None, :], pad_id)


class SpeechDecoder(nn.Module):
    """Transformer + K code embedding tables + K heads + the LLM projection.

    The K tables (and the K heads) are stored back to back in one matrix, so a step costs one
    lookup (one matmul) instead of K.
    """

    def __init__(self, transformer: CausalTransformer, vocab: CodeVocab, *, llm_hidden_size: int,
                 alignment: str = "prefix", steps_per_token: int = 4, max_steps: int = 2048,
                 advance_loss_weight: float = 1.0, streaming: bool = False, lookahead: int = 3):
        super().__init__()
        if alignment not in ("prefix", "stepwise", "pointer"):
            raise ValueError(f"alignment={alignment!r}; choose 'prefix', 'stepwise' or 'pointer'")
        width, k, c = transformer.hidden_size, vocab.num_codebooks, vocab.codebook_size
        self.transformer, self.vocab = transformer, vocab
        self.alignment, self.steps_per_token, self.max_steps = alignment, steps_per_token, max_steps
        self.advance_loss_weight = advance_loss_weight
        self.llm_hidden_size = llm_hidden_size
        # Streaming: tokens visible past the progress (None: text-then-speech, all of them).
        self.lookahead = lookahead if streaming else None
        self.has_prefix = alignment != "stepwise"  # text slots in the decoder sequence
        self.llm_proj = nn.Linear(llm_hidden_size, width)
        self.code_embedding = nn.Embedding(k * c, width)
        self.heads = nn.Linear(width, k * c, bias=False)
        # "pointer": one logit per step, "the next frame starts the next text token", and the
        # look-ahead projection of the token after the pointer.
        self.advance_head = nn.Linear(width, 1) if alignment == "pointer" else None
        self.lookahead_proj = nn.Linear(width, width) if alignment == "pointer" else None
        # Streaming: added to every step that sees the whole text ("nothing more will come").
        self.text_end = nn.Parameter(torch.zeros(width)) if streaming else None

    @classmethod
    def from_config(cls, cfg: SpeechDecoderConfig) -> SpeechDecoder:
        """Build from a `SpeechDecoderConfig` (the config is unpacked here, never stored)."""
        cfg.check()
        transformer = CausalTransformer(
            num_layers=cfg.num_layers, hidden_size=cfg.hidden_size, num_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size, dropout=cfg.dropout, rope_theta=cfg.rope_theta,
            rms_norm_eps=cfg.rms_norm_eps)
        vocab = CodeVocab(num_codebooks=cfg.num_codebooks, codebook_size=cfg.codebook_size,
                          codec_entries=cfg.codec_entries, start_id=cfg.start_id, pad_id=cfg.pad_id,
                          end_id=cfg.end_id)
        return cls(transformer, vocab, llm_hidden_size=cfg.llm_hidden_size, alignment=cfg.alignment,
                   steps_per_token=cfg.steps_per_token, max_steps=cfg.max_steps,
                   advance_loss_weight=cfg.advance_loss_weight, streaming=cfg.streaming, lookahead=cfg.lookahead)

    def check_codec(self, codec) -> None:
        """Raise `CodecMismatchError` (a `ValueError`) naming both sides unless `codec`
        (`nexus_o.codecs.base.SpeechCodec`) decodes exactly the codes this decoder emits: same
        number of codebooks, and codec.codebook_size (its real entries) == codec_entries."""
        v = self.vocab
        check_codec_matches(codec, v.num_codebooks, v.codebook_size, component="speech decoder")
        if codec.codebook_size != v.codec_entries:
            raise CodecMismatchError(f"speech decoder has codec_entries={v.codec_entries} but codec "
                                     f"'{codec.name}' has codebook_size={codec.codebook_size} real entries")

    # ---- pieces shared by training and generation -------------------------------------------

    def embed_codes(self, columns: torch.Tensor) -> torch.Tensor:
        """columns [B, K, S] -> mean of the K code embeddings per step [B, S, D]."""
        k, c = self.vocab.num_codebooks, self.vocab.codebook_size
        # Row of code i of codebook k is k * C + i. (No buffer: it would not survive meta-device init.)
        offsets = torch.arange(0, k * c, c, device=columns.device)[:, None]
        return self.code_embedding(columns + offsets).mean(dim=1)

    def code_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, S, D] -> logits [B, K, S, codebook_size]."""
        b, s, _ = hidden.shape
        return self.heads(hidden).view(b, s, self.vocab.num_codebooks, -1).transpose(1, 2)

    def condition(self, llm_hidden: torch.Tensor, llm_mask: torch.Tensor | None) -> ReplyCondition:
        """Check and project the LLM states: llm_hidden [B, N, llm_hidden_size], llm_mask [B, N]."""
        if llm_hidden.dim() != 3 or llm_hidden.shape[1] == 0:
            raise ValueError(f"llm_hidden must be [batch, tokens >= 1, width], got {tuple(llm_hidden.shape)}")
        if llm_hidden.shape[-1] != self.llm_hidden_size:
            raise ValueError(f"llm_hidden width {llm_hidden.shape[-1]} does not match the speech decoder's "
                             f"llm_hidden_size={self.llm_hidden_size}")
        if llm_mask is None:
            llm_mask = torch.ones(llm_hidden.shape[:2], dtype=torch.bool, device=llm_hidden.device)
        if tuple(llm_mask.shape) != tuple(llm_hidden.shape[:2]):
            raise ValueError(f"llm_mask shape {tuple(llm_mask.shape)} does not match llm_hidden "
                             f"[batch, tokens] = {tuple(llm_hidden.shape[:2])}")
        mask = llm_mask.bool()
        counts = mask.sum(dim=1)
        if (counts == 0).any():
            raise ValueError(f"llm_mask leaves samples {counts.eq(0).nonzero().flatten().tolist()} without any token")
        states = self.project(llm_hidden) * mask[..., None]
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # valid tokens first, in order
        return ReplyCondition(states.gather(1, order[..., None].expand(-1, -1, states.shape[-1])), counts)

    def project(self, llm_hidden: torch.Tensor) -> torch.Tensor:
        """llm_hidden [..., llm_hidden_size] -> text slot states [..., D] (token by token: streaming
        projects the reply's states as they arrive)."""
        return self.llm_proj(llm_hidden.to(self.llm_proj.weight.dtype))

    def pointer_condition(self, cond: ReplyCondition, index: torch.Tensor) -> torch.Tensor:
        """index [B, S] (valid-token indices) -> the "pointer" LLM term [B, S, D]: the token's
        state plus the look-ahead projection of the next token's (zero after the last token)."""
        after = index + 1
        has_next = (after < cond.counts[:, None])[..., None]
        return cond.token(index) + self.lookahead_proj(cond.token(after)) * has_next

    def progress(self, steps: torch.Tensor, batch: int, index: torch.Tensor | None = None) -> torch.Tensor:
        """How far speech has got in the text at each step, [B, S]: the pointer index [B, S]
        ("pointer") or steps [S] // steps_per_token."""
        return index if index is not None else step_progress(steps, self.steps_per_token)[None].expand(batch, -1)

    def step_condition(self, cond: ReplyCondition, progress: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """The LLM term of each step's input [B, S, D], from progress and visible tokens [B, S].

        "prefix": the last visible token; "stepwise": the token at the progress; "pointer": the
        token at the pointer and the next one (`pointer_condition`). Streaming adds `text_end`
        to the steps that see the whole text.
        """
        if self.alignment == "prefix":
            term = cond.token(visible - 1)
        elif self.alignment == "stepwise":
            term = cond.token(progress)
        else:
            term = self.pointer_condition(cond, progress)
        if self.text_end is not None:
            term = term + self.text_end * (visible == cond.counts[:, None])[..., None]
        return term

    def run_sequence(self, cond: ReplyCondition, steps_x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Transformer over the whole interleaved sequence (training): step inputs steps_x [B, S, D],
        visible [B, S] -> hidden of the steps [B, S, D]. Text slot j precedes step s iff j < visible[s]."""
        b, s, d = steps_x.shape
        if not self.has_prefix:
            slots = torch.arange(s, device=steps_x.device)
            return self.transformer(steps_x, slots[None].expand(b, -1), (slots[None] <= slots[:, None])[None, None])
        n = cond.states.shape[1]
        text_slot, step_slot = interleave_slots(visible, cond.counts, n)
        x = steps_x.new_zeros(b, n + s, d)
        x = x.scatter(1, text_slot[..., None].expand(-1, -1, d), cond.states.to(steps_x.dtype))
        x = x.scatter(1, step_slot[..., None].expand(-1, -1, d), steps_x)
        slots = torch.arange(n + s, device=x.device)
        valid = slots[None] < (cond.counts + s)[:, None]  # [B, n + s]; padded text slots come last
        # Causal; padded slots are never attended to, except by themselves (no empty rows).
        attend = ((slots[None, :] <= slots[:, None])[None] & valid[:, None, :]) | torch.eye(n + s, dtype=torch.bool,
                                                                                             device=x.device)
        hidden = self.transformer(x, slots[None].expand(b, -1), attend[:, None])
        return hidden.gather(1, step_slot[..., None].expand(-1, -1, d))

    # ---- training ------------------------------------------------------------------------------

    def check_codes(self, codes: torch.Tensor, code_lengths: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Check target codes [B, K, T]; return lengths [B] (all T when not given)."""
        k, entries = self.vocab.num_codebooks, self.vocab.codec_entries
        if codes.dim() != 3 or codes.dtype.is_floating_point:
            raise ValueError(f"codes must be integer [batch, codebooks, frames], got {codes.dtype} "
                             f"{tuple(codes.shape)}")
        if codes.shape[1] != k:
            raise ValueError(f"codes have {codes.shape[1]} codebooks but the speech decoder has num_codebooks={k}")
        if codes.shape[0] != batch:
            raise ValueError(f"codes batch {codes.shape[0]} does not match llm_hidden batch {batch}")
        frames = codes.shape[2]
        if frames == 0:
            raise ValueError("codes have no frame (T=0): a speech target needs at least one frame")
        if code_lengths is None:
            code_lengths = torch.full((batch,), frames, dtype=torch.long, device=codes.device)
        code_lengths = code_lengths.to(device=codes.device, dtype=torch.long)
        if tuple(code_lengths.shape) != (batch,) or (code_lengths < 1).any() or (code_lengths > frames).any():
            raise ValueError(f"code_lengths must be [batch={batch}] values in [1, T={frames}], "
                             f"got {code_lengths.tolist()}")
        real = torch.arange(frames, device=codes.device)[None, None] < code_lengths[:, None, None]
        bad = real & ((codes < 0) | (codes >= entries))
        if bad.any():
            b, cb, t = bad.nonzero()[0].tolist()
            raise ValueError(f"codes[{b}, {cb}, {t}]={codes[b, cb, t].item()} is not a codec entry: "
                             f"real codes lie in [0, codec_entries={entries})")
        return code_lengths

    def check_token_index(self, token_index: torch.Tensor | None, lengths: torch.Tensor, cond: ReplyCondition,
                          frames: int) -> torch.Tensor:
        """Check the "pointer" targets token_index [B, T] (the valid text token spoken at each
        frame); return it with frames past each sample's length set to its last token."""
        if token_index is None:
            raise ValueError("alignment='pointer' needs token_index [batch, frames]: the text token spoken at "
                             "each frame (the collator derives it from the targets' word timings)")
        b = lengths.shape[0]
        if tuple(token_index.shape) != (b, frames) or token_index.dtype.is_floating_point:
            raise ValueError(f"token_index must be integer [batch={b}, frames={frames}], got "
                             f"{token_index.dtype} {tuple(token_index.shape)}")
        real = torch.arange(frames, device=lengths.device)[None] < lengths[:, None]
        last = (cond.counts - 1)[:, None]
        index = torch.where(real, token_index.to(lengths.device).long(), last)
        if bool(((index < 0) | (index > last)).any()) or bool((index.diff(dim=1) < 0).any()):
            raise ValueError(f"token_index must climb from 0 to at most the last valid text token "
                             f"(counts {cond.counts.tolist()}) and never go back")
        return index

    def forward(self, llm_hidden: torch.Tensor, llm_mask: torch.Tensor | None, codes: torch.Tensor,
                code_lengths: torch.Tensor | None = None,
                token_index: torch.Tensor | None = None) -> SpeechDecoderOutput:
        """Teacher-forced loss.

        llm_hidden: [B, N, llm_hidden_size]; llm_mask: [B, N] (None: all valid);
        codes: [B, K, T] undelayed, right-padded; code_lengths: [B] real frames (None: all T);
        token_index: [B, T] valid-token index spoken at each frame ("pointer" only).
        The targets are the delayed frames 0..T_b (frame T_b all `end_id`); cross-entropy
        counts only real codes and ends, never delay-pattern holes or padding.
        """
        cond = self.condition(llm_hidden, llm_mask)
        lengths = self.check_codes(codes, code_lengths, llm_hidden.shape[0])
        v = self.vocab
        targets = delay_pattern.build(delay_pattern.append_end(codes.long(), lengths, v.end_id, v.pad_id), v.pad_id)
        b, k, s = targets.shape
        inputs = torch.cat([targets.new_full((b, k, 1), v.start_id), targets[..., :-1]], dim=2)
        steps = torch.arange(s, device=targets.device)
        index = None
        if self.alignment == "pointer":
            index = self.check_token_index(token_index, lengths, cond, codes.shape[2])
            # Step t starts frame t; the steps after the last frame stay on the last token.
            tail = (cond.counts - 1)[:, None].expand(-1, s - index.shape[1])
            index = torch.cat([index, tail], dim=1)
        progress = self.progress(steps, b, index)
        visible = visible_tokens(progress, cond.counts, self.lookahead)
        x = self.embed_codes(inputs) + self.step_condition(cond, progress, visible)
        hidden = self.run_sequence(cond, x, visible)
        logits = self.code_logits(hidden)
        frame = steps[None] - torch.arange(k, device=steps.device)[:, None]  # [K, S]
        valid = (frame >= 0)[None] & (frame[None] <= lengths[:, None, None])  # [B, K, S]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                             reduction="none").view(b, k, s)
        per_codebook = (ce * valid).sum(dim=(0, 2)) / valid.sum(dim=(0, 2))
        if self.advance_head is None:
            return SpeechDecoderOutput(per_codebook.mean(), per_codebook, logits)
        # Step t (which read frame t's token) predicts whether frame t + 1 starts a new token.
        t = codes.shape[2]
        advance_logits = self.advance_head(hidden[:, : t - 1]).squeeze(-1).float()
        moved = (index[:, 1:t] > index[:, :t - 1]).float()
        real = torch.arange(t - 1, device=lengths.device)[None] < (lengths - 1)[:, None]
        bce = F.binary_cross_entropy_with_logits(advance_logits, moved, reduction="none")
        advance = (bce * real).sum() / real.sum().clamp(min=1)
        return SpeechDecoderOutput(per_codebook.mean() + self.advance_loss_weight * advance, per_codebook,
                                   logits, advance)

    # ---- generation ----------------------------------------------------------------------------

    def _draw_bias(self, device: torch.device) -> torch.Tensor:
        """[2, K, C] added to logits before drawing: [0] forbids the specials, [1] lets codebook 0
        draw `end_id` (the end is the only special ever drawn; pad and end elsewhere are forced)."""
        v = self.vocab
        bias = torch.zeros(2, v.num_codebooks, v.codebook_size, device=device)
        bias[..., v.codec_entries:] = float("-inf")
        bias[1, 0, v.end_id] = 0.0
        return bias

    def start_generation(self, batch: int, *, max_tokens: int, max_frames: int | None = None, min_frames: int = 1,
                         sampling: SamplingConfig = SamplingConfig(), generator: torch.Generator | None = None,
                         use_graph: bool | None = None) -> SpeechGeneration:
        """A `SpeechGeneration` for `batch` replies of up to `max_tokens` reply tokens, fed as the
        text arrives (`add_text` / `end_text`) and stepped when `ready()`. max_frames defaults to
        max_steps - K + 1."""
        k = self.vocab.num_codebooks
        max_frames = self.max_steps - k + 1 if max_frames is None else max_frames
        return SpeechGeneration(self, batch, max_tokens=max_tokens, max_frames=max_frames, min_frames=min_frames,
                                sampling=sampling, generator=generator, use_graph=use_graph)

    @torch.inference_mode()
    def generate_steps(self, llm_hidden: torch.Tensor, llm_mask: torch.Tensor | None = None, *,
                       max_frames: int | None = None, min_frames: int = 1,
                       sampling: SamplingConfig = SamplingConfig(), generator: torch.Generator | None = None,
                       check_every: int = 1, use_graph: bool | None = None
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield, step by step, (delayed column [B, K], end_frames [B]) until every sample ends.

        llm_hidden [B, N, llm_hidden_size] (the whole reply, `llm_mask` [B, N] its valid tokens).
        end_frames[b] is sample b's frame count once codebook 0 has emitted `end_id`, else -1.
        A sample ends at its first `end_id` (allowed from frame `min_frames` on) or at
        `max_frames` (default: max_steps - K + 1); the steps after finish its delayed frames.
        The end is checked (a device sync) every `check_every` steps: up to check_every - 1
        extra all-pad steps may follow it.
        """
        self.condition(llm_hidden, llm_mask)  # checks the inputs
        if llm_mask is None:
            llm_mask = torch.ones(llm_hidden.shape[:2], dtype=torch.bool, device=llm_hidden.device)
        gen = self.start_generation(llm_hidden.shape[0], max_tokens=llm_hidden.shape[1], max_frames=max_frames,
                                    min_frames=min_frames, sampling=sampling, generator=generator, use_graph=use_graph)
        gen.add_all(llm_hidden, llm_mask)
        while True:
            yield gen.step()
            if gen.exhausted or (gen.step_index % check_every == 0 and gen.finished()):
                return

    def generate(self, llm_hidden: torch.Tensor, llm_mask: torch.Tensor | None = None, *,
                 max_frames: int | None = None, min_frames: int = 1,
                 sampling: SamplingConfig = SamplingConfig(),
                 generator: torch.Generator | None = None) -> GeneratedSpeech:
        """Generate codes for llm_hidden [B, N, llm_hidden_size] (llm_mask [B, N]).

        Returns `GeneratedSpeech(codes [B, K, T], lengths [B])`, T = max(lengths), the delay
        pattern reverted. See `generate_steps` for the options.
        """
        columns, end_frames = [], None
        for column, end_frames in self.generate_steps(llm_hidden, llm_mask, max_frames=max_frames,
                                                      min_frames=min_frames, sampling=sampling, generator=generator):
            columns.append(column)
        codes = undelay(torch.stack(columns, dim=2), end_frames, self.vocab.pad_id)
        return GeneratedSpeech(codes[..., :int(end_frames.max())], end_frames)
