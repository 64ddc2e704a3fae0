"""`OmniChat`: one conversation turn in, text (and speech) out, whole or streamed.

Speech is written while the text is: one loop decodes the reply with the LLM token by token
(`ReplyDecoder`), hands each token's speech condition to the speech decoder as it appears (the
last hidden state the LLM computed when reading it: no second pass over prompt + reply), and
runs up to `decoder_steps_per_token` decoder steps after each LLM step whenever the decoder's
schedule lets it (a streaming decoder starts once its first `lookahead` reply tokens exist and
waits when it catches up with the text; a text-then-speech decoder waits for the whole text).
After the text the decoder runs on to its end. Audio goes through the codec a chunk of
`chunk_frames` frames at a time, so streamed audio arrives interleaved with the text pieces.

Before any model work the prompt is checked against the LLM's context (and an optional
`max_prompt_tokens`): `prepare` (`nexus_o.inference.text.prepare_inputs`) raises
`ContextLengthError`, a ValueError naming both numbers. A `CancelToken` passed to `chat` stops
the reply at the next decoding step, text or speech, and raises `Cancelled`; closing a stream
stops it too.

`chat_batch` writes text replies to several conversations at once: their prompts decode as one
left-padded batch (`ReplyDecoder.batch_steps`), which reads the LLM's weights once a step for all
of them (the server batches text requests that arrive together through it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import BatchFeature

from nexus_o.inference.cancel import CancelToken
from nexus_o.inference.limits import LengthLimits
from nexus_o.inference.reply_steps import ReplyDecoder
from nexus_o.inference.speech_stream import AudioRenderer, FrameChunker
from nexus_o.inference.text import prepare_inputs
from nexus_o.models.sampling import SamplingConfig
from nexus_o.models.speech_decoder import undelay
from nexus_o.processing.batching import join_rows

VOICES = ("default",)  # the speech decoder speaks in the one voice it was trained on


@dataclass
class ChatReply:
    """text; audio float32 [n] at sample_rate (None when not asked for); codes [K, T]."""

    text: str
    audio: np.ndarray | None = None
    sample_rate: int | None = None
    codes: torch.Tensor | None = None


@dataclass
class ChatChunk:
    """One streamed piece: either text or audio (float32 [n] at sample_rate)."""

    text: str | None = None
    audio: np.ndarray | None = None
    sample_rate: int | None = None


@dataclass
class PreparedPrompt:
    """A conversation with its processed, length-checked model inputs (`OmniChat.prepare`).

    inputs: the processor's BatchFeature for one conversation (input_ids [1, L], ...), on CPU.
    max_new_tokens: the reply budget it was checked with.
    """

    conversation: dict
    inputs: BatchFeature
    max_new_tokens: int
    base_dir: str | Path | None = None

    @property
    def tokens(self) -> int:
        """Prompt length in tokens, media placeholders included."""
        return int(self.inputs["input_ids"].shape[1])


class TextPieces:
    """Token ids in, text pieces out, holding back a piece that ends inside a multi-byte character.

    Decoding is incremental (as vLLM's detokenizer): each token decodes only the window of ids
    since the piece before last, and the new piece is what that window adds to the text it gave
    then, so a reply of n tokens costs O(n) decoding, not O(n^2) (it matters with long replies
    and with a batch of them, on the host while the GPU waits). `text`: the reply so far.
    """

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.text = tokenizer, [], ""
        self._start = self._read = 0  # ids[_start:_read] gave the text handed out last

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def push(self, token: int) -> str:
        self.ids.append(token)
        before = self._decode(self.ids[self._start:self._read])
        now = self._decode(self.ids[self._start:])
        if len(now) <= len(before) or now.endswith("\ufffd"):
            return ""
        piece = now[len(before):]
        self._start, self._read = self._read, len(self.ids)
        self.text += piece
        return piece


class OmniChat:
    """Chat with a `NexusOForConditionalGeneration`, its processor and (for speech) its codec.

    max_prompt_tokens: refuse prompts longer than this (besides the model's own context).
    chunk_frames: codec frames per audio chunk; decoder_steps_per_token: decoder steps run after
    each LLM step at most (the rest once the text is done).
    audio_lead_seconds: once speech has started, the decoder yields its turn to the LLM while the
        audio handed out is this far ahead of playback (from the first chunk on), so the text is
        not held back by speech that is already ahead; it always runs once the text is done.
    min_reply_tokens / min_speech_frames: force lengths (benchmarks on random weights).
    static_cache / compile_step: the LLM's decoding (`ReplyDecoder`; defaults: static on CUDA).
    """

    def __init__(self, model, processor, codec=None, *, max_new_tokens: int = 256,
                 speech_sampling: SamplingConfig = SamplingConfig(greedy=True), max_speech_seconds: float = 30.0,
                 seconds_per_char: float = 0.25, chunk_frames: int = 16, max_prompt_tokens: int | None = None,
                 decoder_steps_per_token: int = 8, audio_lead_seconds: float = 1.0,
                 min_reply_tokens: int = 0, min_speech_frames: int = 1,
                 static_cache: bool | None = None, compile_step: bool = False):
        self.model, self.processor, self.codec = model, processor, codec
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.speech_sampling = speech_sampling
        self.max_speech_seconds = max_speech_seconds
        self.seconds_per_char = seconds_per_char
        self.chunk_frames = chunk_frames
        if decoder_steps_per_token < 1:
            raise ValueError(f"decoder_steps_per_token={decoder_steps_per_token} must be >= 1")
        self.decoder_steps_per_token = decoder_steps_per_token
        self.audio_lead_seconds = audio_lead_seconds
        self.min_reply_tokens, self.min_speech_frames = min_reply_tokens, min_speech_frames
        eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.replies = ReplyDecoder(model, eos, static_cache=static_cache, compile_step=compile_step)
    # -- checks -------------------------------------------------------------------------------
    def _check(self, modalities: Sequence[str], voice: str | None) -> bool:
        unknown = set(modalities) - {"text", "audio"}
        if unknown or "text" not in modalities:
            raise ValueError(f"modalities must be ['text'] or ['text', 'audio'], got {list(modalities)}")
        speak = "audio" in modalities
        if speak:
            if self.model.speech_decoder is None:
                raise ValueError("this model has no speech decoder; ask for modalities=['text']")
            if self.codec is None:
                raise ValueError("no codec is attached to this model; speech needs one")
            if voice is not None and voice not in VOICES:
                raise ValueError(f"unknown voice {voice!r}; this model speaks with: {list(VOICES)}")
        return speak

    def _conversation(self, messages: list[dict] | dict) -> dict:
        return messages if isinstance(messages, dict) else {"messages": list(messages)}

    def prepare(self, messages: list[dict] | dict, base_dir: str | Path | None = None,
                max_new_tokens: int | None = None) -> PreparedPrompt:
        """Process `messages` for a reply of up to `max_new_tokens` (default: this chat's), lengths checked.

        Raises `ContextLengthError` when the prompt or the reply budget does not fit.
        """
        conversation = self._conversation(messages)
        budget = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        inputs = prepare_inputs(self.model, self.processor, conversation, budget, base_dir=base_dir,
                                max_prompt_tokens=self.max_prompt_tokens)
        return PreparedPrompt(conversation, inputs, budget, base_dir)

    # -- pieces -------------------------------------------------------------------------------
    @torch.inference_mode()
    def reply_states(self, conversation: dict, reply: str, base_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The speech decoder's condition for the reply tokens: (states [1, L, H], mask [1, L] bool).

        The mask is the processor's `reply_mask` (the new reply, the conversation's last assistant
        turn), the condition stage 3 trains on.
        """
        conv = dict(conversation, messages=list(conversation["messages"]) + [{"role": "assistant", "content": reply}])
        batch = self.processor.apply_chat_template(conv, add_generation_prompt=False, return_reply_mask=True,
                                                   base_dir=base_dir)
        LengthLimits.of(self.model).check_sequence(int(batch["input_ids"].shape[1]))
        batch = batch.to(self.model.device)
        mask = batch.pop("reply_mask")
        out = self.model(**batch, output_hidden_states=True)
        return self.model.speech_condition(out.hidden_states[-1], batch["input_ids"]), mask

    def _max_frames(self, text: str) -> int:
        """Frames a reply may take: 1 s + `seconds_per_char` a character (people speak about
        0.07 s a character), capped at `max_speech_seconds`, so a decoder that never says
        "end" cannot run away."""
        seconds = min(self.max_speech_seconds, 1.0 + self.seconds_per_char * len(text))
        return max(1, int(seconds * self.codec.frame_rate))

    # -- public API -----------------------------------------------------------------------------
    def chat(self, messages: list[dict] | dict | PreparedPrompt, modalities: Sequence[str] = ("text",),
             voice: str | None = None, stream: bool = False, base_dir: str | Path | None = None,
             cancel: CancelToken | None = None):
        """Reply to `messages` (a message list, a dict with messages + media lists, or a `PreparedPrompt`).

        Returns a `ChatReply`, or with stream=True an iterator of `ChatChunk`s: text pieces as the
        LLM writes them, audio chunks as soon as the codec can render them (interleaved with the
        text when the decoder streams). Raises `ContextLengthError` before any model work when
        the prompt does not fit; with `cancel`, stops at the next decoding step after it is
        cancelled (`Cancelled`).
        """
        speak = self._check(modalities, voice)
        prompt = messages if isinstance(messages, PreparedPrompt) else self.prepare(messages, base_dir)
        if stream:
            return self._reply(prompt, speak, cancel, render=True)
        reply = ChatReply(text="")
        for chunk in self._reply(prompt, speak, cancel, render=False, into=reply):
            reply.text += chunk.text or ""
        reply.text = reply.text.strip()
        if reply.codes is not None:
            reply.audio = self.codec.decode(reply.codes[None].to(self.model.device))[0, 0].float().cpu().numpy()
            reply.sample_rate = self.codec.sample_rate
        return reply

    def chat_batch(self, prompts: Sequence[list[dict] | dict | PreparedPrompt],
                   cancels: Sequence[CancelToken | None] | None = None) -> Iterator[tuple[int, ChatChunk | None]]:
        """Text replies to several conversations decoded together (one LLM step serves them all).

        Yields (index, ChatChunk) text pieces as they are written, and (index, None) once the
        reply at `index` is complete; replies end independently. cancels: one token per prompt
        (None: not cancellable); a cancelled prompt stops getting pieces and the others go on.
        Each prompt keeps its own budget (`PreparedPrompt.max_new_tokens`).
        """
        prepared = [p if isinstance(p, PreparedPrompt) else self.prepare(p) for p in prompts]
        if not prepared:
            return
        inputs = join_rows([p.inputs for p in prepared], self.processor.tokenizer.pad_token_id)
        pieces = [TextPieces(self.processor.tokenizer) for _ in prepared]
        steps = self.replies.batch_steps(inputs, [p.max_new_tokens for p in prepared], row_cancels=cancels,
                                         min_new_tokens=self.min_reply_tokens, conditions=False)
        for step in steps:
            for index, item in enumerate(step):
                if item is None:
                    continue
                piece = "" if item.empty else pieces[index].push(item.token)
                if piece:
                    yield index, ChatChunk(text=piece)
                if item.last:
                    yield index, None

    def speak(self, messages: list[dict] | dict, text: str, base_dir: str | Path | None = None) -> ChatReply:
        """Speech for a given reply `text` to `messages` (text-to-speech: the reply is not generated)."""
        self._check(("text", "audio"), None)
        hidden, mask = self.reply_states(self._conversation(messages), text, base_dir)
        generated = self.model.speech_decoder.generate(hidden, mask, max_frames=self._max_frames(text),
                                                       min_frames=min(self.min_speech_frames, self._max_frames(text)),
                                                       sampling=self.speech_sampling)
        codes = generated.codes[:, :, : int(generated.lengths[0])]
        wav = self.codec.decode(codes)[0, 0].float().cpu().numpy()
        return ChatReply(text=text, audio=wav, sample_rate=self.codec.sample_rate, codes=codes[0].cpu())

    def _reply(self, prompt: PreparedPrompt, speak: bool, cancel: CancelToken | None, *, render: bool,
               into: ChatReply | None = None) -> Iterator[ChatChunk]:
        """The one reply loop (see the module doc). render: pass audio chunks through the codec
        as they complete; `into`: receives the codes [K, T] at the end (speech only)."""
        stop = CancelToken(parent=cancel)  # also ends when the caller stops reading (GeneratorExit)
        pieces = TextPieces(self.processor.tokenizer)
        speech = _Speech(self, prompt.max_new_tokens, stop, render) if speak else None
        try:
            with torch.inference_mode():
                for step in self.replies.steps(prompt.inputs, prompt.max_new_tokens, stop,
                                               min_new_tokens=self.min_reply_tokens, conditions=speak):
                    piece = "" if step.empty else pieces.push(step.token)
                    if piece:
                        yield ChatChunk(text=piece)
                    if speech is not None:
                        speech.add(step, pieces.text)
                        yield from speech.run(None if step.last else self.decoder_steps_per_token)
                if speech is not None:
                    yield from speech.run(None)
                    yield from speech.finish(into)
        finally:
            stop.cancel("reply closed")


class _Speech:
    """The speech side of one reply: the decoder's generation, its chunker and the codec renderer."""

    def __init__(self, chat: OmniChat, max_tokens: int, stop: CancelToken, render: bool):
        self.chat, self.stop = chat, stop
        decoder, codec = chat.model.speech_decoder, chat.codec
        self.cap = max(1, int(chat.max_speech_seconds * codec.frame_rate))
        self.gen = decoder.start_generation(1, max_tokens=max_tokens + 1, max_frames=self.cap,
                                            min_frames=min(chat.min_speech_frames, self.cap),
                                            sampling=chat.speech_sampling)
        self.chunker = FrameChunker(decoder.vocab.num_codebooks, decoder.vocab.pad_id, chat.chunk_frames)
        self.renderer = AudioRenderer(codec) if render else None
        self.columns: list[torch.Tensor] = []
        self.done = False
        self.first_audio: float | None = None  # time.monotonic() of the first chunk
        self.frames_out = 0

    def ahead(self) -> float:
        """Seconds of audio handed out beyond what has played since the first chunk."""
        if self.first_audio is None:
            return 0.0
        return self.frames_out / self.chat.codec.frame_rate - (time.monotonic() - self.first_audio)

    def add(self, step, text: str) -> None:
        self.gen.add_text(0, step.condition)
        if step.last:
            self.gen.end_text(0)
            self.gen.limit_frames(self.chat._max_frames(text.strip()))

    def _audio(self, codes: torch.Tensor) -> Iterator[ChatChunk]:
        if self.first_audio is None:
            self.first_audio = time.monotonic()
        self.frames_out += codes.shape[-1]
        if self.renderer is not None:
            yield from self._chunks(self.renderer.push(codes))

    def _chunks(self, waves: Iterator[torch.Tensor]) -> Iterator[ChatChunk]:
        """Waveform chunks [1, 1, n] -> audio `ChatChunk`s."""
        for wav in waves:
            yield ChatChunk(audio=wav[0, 0].float().cpu().numpy(), sample_rate=self.chat.codec.sample_rate)

    def run(self, limit: int | None) -> Iterator[ChatChunk]:
        """Up to `limit` decoder steps (None: until the speech ends) while the schedule allows."""
        gen, steps = self.gen, 0
        if limit is not None and self.ahead() > self.chat.audio_lead_seconds:
            return  # far enough ahead of playback: let the text go on
        while not self.done and (limit is None or steps < limit) and gen.ready():
            self.stop.check()
            column, end_frames = gen.step()
            steps += 1
            self.columns.append(column)
            chunk = self.chunker.push(column, end_frames)
            if chunk is not None:
                yield from self._audio(chunk)
            if gen.exhausted or (gen.step_index % self.chunker.chunk_frames == 0 and gen.finished()):
                self.done = True

    def finish(self, into: ChatReply | None) -> Iterator[ChatChunk]:
        end_frames = self.gen.end_frames
        for chunk in self.chunker.flush(end_frames):
            yield from self._audio(chunk)
        if self.renderer is not None:
            yield from self._chunks(self.renderer.flush())
        if into is not None:
            length = int(end_frames[0])
            codes = undelay(torch.stack(self.columns, dim=2), end_frames, self.gen.decoder.vocab.pad_id)
            into.codes = codes[0, :, :length].cpu()
