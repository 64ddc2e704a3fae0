"""`OmniChat`: one conversation turn in, text (and speech) out, whole or streamed.

Speech follows the text: the reply text is generated first, then the prompt + reply run once
through the LLM (teacher-forced, exactly as in stage-3 training) to get the last hidden states
of the reply tokens, which condition the speech decoder; its codes go through the codec.
Streaming yields text pieces as the LLM produces them, then audio chunks as soon as the codec
can render them.

Before any model work the prompt is checked against the LLM's context (and an optional
`max_prompt_tokens`): `prepare` (`nexus_o.inference.text.prepare_inputs`) raises
`ContextLengthError`, a ValueError naming both numbers. A `CancelToken` passed to `chat` stops
the reply at the next decoding step, text or speech, and raises `Cancelled`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import BatchFeature, TextIteratorStreamer

from nexus_o.inference.cancel import CancelToken
from nexus_o.inference.limits import LengthLimits
from nexus_o.inference.text import cancel_criteria, generate_from_inputs, prepare_inputs
from nexus_o.models.sampling import SamplingConfig
from nexus_o.inference.speech_stream import stream_audio

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


class OmniChat:
    """Chat with a `NexusOForConditionalGeneration`, its processor and (for speech) its codec.

    max_prompt_tokens: refuse prompts longer than this (besides the model's own context).
    """

    def __init__(self, model, processor, codec=None, *, max_new_tokens: int = 256,
                 speech_sampling: SamplingConfig = SamplingConfig(greedy=True), max_speech_seconds: float = 30.0,
                 seconds_per_char: float = 0.25, chunk_frames: int = 16, max_prompt_tokens: int | None = None):
        self.model, self.processor, self.codec = model, processor, codec
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.speech_sampling = speech_sampling
        self.max_speech_seconds = max_speech_seconds
        self.seconds_per_char = seconds_per_char
        self.chunk_frames = chunk_frames

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

        Returns a `ChatReply`, or with stream=True an iterator of `ChatChunk`s (text first,
        then audio). Raises `ContextLengthError` before any model work when the prompt does not
        fit; with `cancel`, stops at the next decoding step after it is cancelled (`Cancelled`).
        """
        speak = self._check(modalities, voice)
        prompt = messages if isinstance(messages, PreparedPrompt) else self.prepare(messages, base_dir)
        if stream:
            return self._stream(prompt, speak, cancel)
        text = generate_from_inputs(self.model, self.processor, prompt.inputs, prompt.max_new_tokens,
                                    cancel=cancel)[0]
        if not speak:
            return ChatReply(text=text)
        return self.speak(prompt.conversation, text, prompt.base_dir)

    def speak(self, messages: list[dict] | dict, text: str, base_dir: str | Path | None = None) -> ChatReply:
        """Speech for a given reply `text` to `messages` (text-to-speech: the reply is not generated)."""
        self._check(("text", "audio"), None)
        hidden, mask = self.reply_states(self._conversation(messages), text, base_dir)
        generated = self.model.speech_decoder.generate(hidden, mask, max_frames=self._max_frames(text),
                                                       sampling=self.speech_sampling)
        codes = generated.codes[:, :, : int(generated.lengths[0])]
        wav = self.codec.decode(codes)[0, 0].float().cpu().numpy()
        return ChatReply(text=text, audio=wav, sample_rate=self.codec.sample_rate, codes=codes[0].cpu())

    def _stream(self, prompt: PreparedPrompt, speak: bool, cancel: CancelToken | None) -> Iterator[ChatChunk]:
        # The LLM runs on its own thread; `stop` ends it at its next step when the caller cancels
        # or stops reading (closing this generator), so no work outlives the reply.
        stop = CancelToken(parent=cancel)
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        eos = self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        kwargs = dict(prompt.inputs.to(self.model.device), max_new_tokens=prompt.max_new_tokens, do_sample=False,
                      eos_token_id=eos, pad_token_id=self.processor.tokenizer.pad_token_id, streamer=streamer,
                      **cancel_criteria(stop))
        errors: list[BaseException] = []

        def run():
            try:
                self.model.generate(**kwargs)
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(err)
                streamer.end()

        worker = threading.Thread(target=run, name="nexus-o-generate", daemon=True)
        worker.start()
        try:
            pieces = []
            for piece in streamer:
                if piece:
                    pieces.append(piece)
                    yield ChatChunk(text=piece)
            worker.join()
            if errors:
                raise errors[0]
            stop.check()
            if not speak:
                return

            text = "".join(pieces).strip()
            hidden, mask = self.reply_states(prompt.conversation, text, prompt.base_dir)
            for wav in stream_audio(self.model.speech_decoder, self.codec, hidden, mask,
                                    chunk_frames=self.chunk_frames, max_frames=self._max_frames(text),
                                    sampling=self.speech_sampling, cancel=stop):
                yield ChatChunk(audio=wav[0, 0].float().cpu().numpy(), sample_rate=self.codec.sample_rate)
        finally:
            stop.cancel("reply stream closed")
            worker.join()
