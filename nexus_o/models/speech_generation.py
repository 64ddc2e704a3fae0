"""Speech generation, step by step, while the reply text may still be arriving.

`SpeechGeneration` holds one batch of replies being spoken by a `SpeechDecoder`: the projected
reply states received so far, a fixed-shape KV cache, the last column of codes, the pointer
("pointer" alignment) and where each sample's speech ended. The caller feeds text with
`add_text` / `end_text` as the LLM produces it and calls `step` whenever `ready()` says the
schedule of `nexus_o.models.speech_schedule` allows; training sees exactly the same tokens at
every step, so teacher-forced and generated logits agree (tests/models/test_speech_streaming.py).

Speed: every decoder call has the same shapes (one slot per sample against the whole cache,
masked), sampling and end detection stay on the device, and the host reads device values only
where it must decide something: whether the next step may run while text is still arriving
(the pointer), and `finished()`, which a stream asks once per chunk. On CUDA the step's
transformer and heads are captured once in a CUDA graph and replayed.
"""

from __future__ import annotations

import torch

from nexus_o.models.sampling import SamplingConfig, sample_codes
from nexus_o.models.speech_condition import ReplyCondition
from nexus_o.models.speech_schedule import run_condition, visible_count


GRAPH_CAPACITY_STEP = 256  # graph-captured caches come in multiples of this many slots


class _StepBuffers:
    """The fixed buffers of a decoder step (KV cache, key validity, input and slot), and on CUDA
    its captured graph. Kept on the decoder per (batch, capacity, dtype, device) when graphs are
    used, so a reply reuses the graph an earlier one captured; otherwise made fresh. Kept buffers
    serve one generation at a time (the server runs one model worker)."""

    def __init__(self, decoder, batch: int, capacity: int, width: int, dtype, device):
        self.cache = decoder.transformer.new_cache(batch, capacity, dtype, device)
        self.key_valid = torch.zeros(batch, capacity + 1, dtype=torch.bool, device=device)
        self.x = torch.zeros(batch, 1, width, dtype=dtype, device=device)
        self.slot = torch.zeros(batch, dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None
        self.hidden: torch.Tensor | None = None

    @classmethod
    def get(cls, decoder, batch: int, capacity: int, width: int, dtype, device, keep: bool) -> _StepBuffers:
        if not keep:
            return cls(decoder, batch, capacity, width, dtype, device)
        pool = decoder.__dict__.setdefault("_step_buffers", {})  # not a module attribute: never saved
        key = (batch, capacity, dtype, str(device))
        if key not in pool:
            pool[key] = cls(decoder, batch, capacity, width, dtype, device)
        buffers = pool[key]
        buffers.key_valid.zero_()  # a new sequence: no slot is valid yet
        return buffers


class SpeechGeneration:
    """One batch of replies being spoken (see the module doc).

    decoder: the `SpeechDecoder`; batch: replies; max_tokens: reply tokens each may receive;
    max_frames / min_frames: per-sample frame limits; use_graph: capture the step on CUDA
    (None: on CUDA only).
    """

    def __init__(self, decoder, batch: int, *, max_tokens: int, max_frames: int, min_frames: int = 1,
                 sampling: SamplingConfig = SamplingConfig(), generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 use_graph: bool | None = None):
        if not 0 <= min_frames <= max_frames:
            raise ValueError(f"need 0 <= min_frames <= max_frames, got min_frames={min_frames}, "
                             f"max_frames={max_frames}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens={max_tokens} must be >= 1")
        v = decoder.vocab
        param = decoder.llm_proj.weight
        device = torch.device(device) if device is not None else param.device
        dtype = dtype or param.dtype
        self.decoder, self.batch, self.device = decoder, batch, device
        self.k, self.max_tokens, self.max_frames, self.min_frames = v.num_codebooks, max_tokens, max_frames, min_frames
        self.sampling, self.generator = sampling, generator
        width = decoder.transformer.hidden_size
        need = (max_tokens if decoder.has_prefix else 0) + max_frames + self.k
        self.use_graph = device.type == "cuda" if use_graph is None else use_graph
        if self.use_graph:  # graphs and their buffers are kept and reused: capacity rounded up
            need = -(-need // GRAPH_CAPACITY_STEP) * GRAPH_CAPACITY_STEP
        self.capacity = need
        self.slot_ids = torch.arange(self.capacity + 1, device=device)
        self.step_buffers = _StepBuffers.get(decoder, batch, self.capacity, width, dtype, device, self.use_graph)
        self.cache, self.key_valid = self.step_buffers.cache, self.step_buffers.key_valid
        self.x_buf, self.slot_buf = self.step_buffers.x, self.step_buffers.slot
        self.states = torch.zeros(batch, max_tokens, width, dtype=dtype, device=device)  # projected reply states
        # Host-side bookkeeping (plain ints: deciding what to run never reads the device).
        self.known = [0] * batch  # tokens whose states arrived
        self.ended = [False] * batch  # the text is complete
        self.inserted = [0] * batch  # text slots written to the cache
        self.visible_host = [0] * batch  # tokens the next step may read
        self.step_index = 0
        # Device-side state.
        # The reply as the decoder reads it; counts = known (+ 1 while the text goes on: `ReplyCondition`).
        self.reply = ReplyCondition(self.states, torch.ones(batch, dtype=torch.long, device=device))
        self.visible = torch.zeros(batch, dtype=torch.long, device=device)
        self.inserted_dev = torch.zeros(batch, dtype=torch.long, device=device)  # = inserted (slot offset)
        self.column = torch.full((batch, self.k), v.start_id, dtype=torch.long, device=device)
        self.end_frames = torch.full((batch,), -1, dtype=torch.long, device=device)
        self.pointer = torch.zeros(batch, dtype=torch.long, device=device) if decoder.advance_head is not None else None
        self.bias = decoder._draw_bias(device)
        self.logits: torch.Tensor | None = None  # [B, K, C] of the last step, before the draw

    # ---- text in --------------------------------------------------------------------------------
    def add_text(self, sample: int, llm_states: torch.Tensor) -> None:
        """Reply tokens' conditions llm_states [n, llm_hidden_size] (`speech_condition` of the
        LLM's last hidden states) arrive for `sample`, in order.

        A token's state exists once the LLM has read it, when it also draws the next token: call
        `end_text` at once when that next token ends the reply. (`ready()` relies on it: text
        that has not ended goes on past the tokens known.)"""
        if self.ended[sample]:
            raise ValueError(f"sample {sample}: text added after end_text")
        n, start = llm_states.shape[0], self.known[sample]
        if start + n > self.max_tokens:
            raise ValueError(f"sample {sample}: {start + n} reply tokens exceed max_tokens={self.max_tokens}")
        if n:
            self.states[sample, start:start + n] = self.decoder.project(llm_states.to(self.device))
            self.known[sample] += n
            self.reply.counts[sample] = self.known[sample] + 1

    def end_text(self, sample: int) -> None:
        """`sample`'s text is complete (it must hold at least one token)."""
        if self.known[sample] == 0:
            raise ValueError(f"sample {sample}: a reply needs at least one token to speak from")
        self.ended[sample] = True
        self.reply.counts[sample] = self.known[sample]

    def add_all(self, llm_states: torch.Tensor, mask: torch.Tensor) -> None:
        """Every reply at once: llm_states [B, N, llm_hidden_size], mask [B, N] (valid tokens)."""
        for b in range(self.batch):
            self.add_text(b, llm_states[b][mask[b].bool()])
            self.end_text(b)

    def limit_frames(self, frames: int) -> None:
        """Lower max_frames to `frames` (not below the frame being generated: the end can only
        come from the next step on). For replies whose length is known only once the text ends."""
        self.max_frames = min(self.max_frames, max(frames, self.step_index))
        self.min_frames = min(self.min_frames, self.max_frames)

    # ---- schedule ---------------------------------------------------------------------------------
    def _progress(self) -> list[int]:
        """Where speech has got in each sample's text (reads the pointer: a device sync)."""
        if self.pointer is not None:
            return self.pointer.tolist()
        return [self.step_index // self.decoder.steps_per_token] * self.batch

    def _settled(self) -> bool:
        """All text has arrived and is in the sequence: nothing left to decide on the host."""
        return all(e and (i == n or not self.decoder.has_prefix) and v == n
                   for e, i, n, v in zip(self.ended, self.inserted, self.known, self.visible_host))

    def ready(self) -> bool:
        """May the next step run? (Each sample has the tokens its step reads, or has finished.)"""
        if all(self.ended):
            return True
        lookahead = self.decoder.lookahead
        return all(run_condition(p, lookahead, n, e) for p, n, e in zip(self._progress(), self.known, self.ended))

    def _visible(self, progress: list[int]) -> list[int]:
        return [visible_count(p, self.decoder.lookahead, n) for p, n in zip(progress, self.known)]

    # ---- the decoder ----------------------------------------------------------------------------------
    def _attend(self, slots: torch.Tensor) -> torch.Tensor:
        """Mask [B, 1, q, capacity + 1] for queries at slots [B, q] (their writes already marked valid)."""
        keys = self.slot_ids[None, None, :]
        return ((self.key_valid[:, None, :] & (keys <= slots[..., None])) | (keys == slots[..., None]))[:, None]

    def _write(self, x: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """Run x [B, q, D] at slots [B, q] (the scratch slot where a sample has nothing) -> hidden [B, q, D]."""
        self.key_valid.scatter_(1, slots, True)
        self.key_valid[:, -1] = False
        return self.decoder.transformer(x, slots, self._attend(slots), self.cache)

    def _insert_text(self, visible: list[int]) -> None:
        """Write text slots inserted .. visible - 1 of every sample (one call, padded with scratch)."""
        want = [v - i for v, i in zip(visible, self.inserted)]
        q = max(want)
        if q <= 0:
            return
        scratch = self.capacity
        slots = torch.full((self.batch, q), scratch, dtype=torch.long)
        index = torch.zeros(self.batch, q, dtype=torch.long)
        for b, (i, w) in enumerate(zip(self.inserted, want)):
            if w > 0:
                slots[b, :w] = torch.arange(i + self.step_index, i + self.step_index + w)
                index[b, :w] = torch.arange(i, i + w)
        index = index.to(self.device)
        x = self.states.gather(1, index[..., None].expand(-1, -1, self.states.shape[-1]))
        self._write(x, slots.to(self.device))
        self.inserted = [max(i, v) for i, v in zip(self.inserted, visible)]
        self.inserted_dev.copy_(torch.tensor(self.inserted))

    def _audio_core(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed-shape part of a step: x_buf [B, 1, D] at slot_buf [B] -> (logits [B, K, C], hidden [B, 1, D])."""
        hidden = self._write(self.x_buf, self.slot_buf[:, None])
        return self.decoder.code_logits(hidden)[:, :, 0], hidden

    def _run_audio(self) -> torch.Tensor:
        if not self.use_graph:
            logits, self.hidden = self._audio_core()
            return logits
        buffers = self.step_buffers
        if buffers.graph is None:
            self._capture(buffers)
        buffers.graph.replay()
        self.hidden = buffers.hidden
        return buffers.logits

    def _capture(self, buffers: _StepBuffers) -> None:
        """Capture `_audio_core` in a CUDA graph (after a warm-up on a side stream, as torch asks).
        The warm-ups run the current step itself (same inputs, same cache writes): nothing to undo."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._audio_core()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            buffers.logits, buffers.hidden = self._audio_core()
        buffers.graph = graph

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Run one delayed step -> (column [B, K] of codes, end_frames [B]); `ready()` must hold."""
        d, v = self.decoder, self.decoder.vocab
        if self.exhausted:
            raise RuntimeError(f"speech generation is over: {self.step_index} steps reach max_frames={self.max_frames}")
        if not self._settled():
            progress = self._progress()
            visible = self._visible(progress)
            if d.has_prefix:
                self._insert_text(visible)
            if visible != self.visible_host:
                self.visible_host = visible
                self.visible.copy_(torch.tensor(visible))
        # The step's input: mean code embedding of the last column + the LLM term (as in training).
        progress = self.pointer if self.pointer is not None else torch.full_like(
            self.visible, self.step_index // d.steps_per_token)
        x = d.embed_codes(self.column[..., None]) + d.step_condition(self.reply, progress[:, None],
                                                                     self.visible[:, None])  # [B, 1, D]
        self.x_buf.copy_(x)
        self.slot_buf.copy_(self.inserted_dev + self.step_index)
        logits = self._run_audio()
        if self.pointer is not None:
            # No end before the last token is reached; then move the pointer for the next frame.
            # (While text is still arriving, counts - 1 lies past the pointer: the schedule waits for it.)
            last = self.reply.counts - 1
            logits = logits.clone()
            logits[:, 0, v.end_id] = logits[:, 0, v.end_id].masked_fill(self.pointer < last, -torch.inf)
            advance = d.advance_head(self.hidden[:, -1]).squeeze(-1) > 0
            self.pointer = torch.minimum(self.pointer + advance.long(), last)
        self.logits = logits
        self.column, self.end_frames = self._pick(logits)
        self.step_index += 1
        return self.column, self.end_frames

    def _pick(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw the column [B, K] from logits [B, K, C]; force what the delay pattern and the end
        convention fix; update end_frames [B]. Tensor ops only: no host sync."""
        v, step = self.decoder.vocab, self.step_index
        ids = sample_codes(logits + self.bias[int(step >= self.min_frames)], self.sampling, self.generator)
        must_end = step >= self.max_frames
        stops = (self.end_frames < 0) & ((ids[:, 0] == v.end_id) | must_end)
        end_frames = torch.where(stops, step, self.end_frames)
        frame = step - torch.arange(self.k, device=ids.device)[None]  # [1, K]
        last = torch.where(end_frames >= 0, end_frames, torch.iinfo(torch.long).max)[:, None]
        ids = torch.where(frame == last, v.end_id, ids)
        ids = torch.where((frame < 0) | (frame > last), v.pad_id, ids)
        return ids, end_frames

    @property
    def exhausted(self) -> bool:
        """Every sample has surely ended: max_frames forces the end, K - 1 steps finish it. (No sync.)"""
        return self.step_index >= self.max_frames + self.k - 1

    def finished(self) -> bool:
        """Has every sample ended and emitted its last delayed frame? (A device sync.)"""
        ends = self.end_frames.tolist()
        return min(ends) >= 0 and self.step_index - 1 >= max(ends) + max(self.k - 2, 0)
