"""`ChatEngine`: what the server asks of a model, one turn (or a batch of text turns) at a time,
always as a stream.

It wraps `OmniChat` (the library behind `OmniModel.chat`, built by `OmniModel.session`) with the
per-request options the HTTP API has (max_tokens, speech on/off, voice) and adds what OpenAI
replies carry besides the text: token usage and a finish reason. Both the streamed and the whole replies come from the same
stream, and `run` takes the job's `CancelToken`, so a request past its deadline or whose client
left stops at the model's next decoding step.

`prepare` processes a conversation and checks its length before the request joins the model
queue. It runs on the request threads, so it works on its own copy of the processor, behind a
lock: the model worker's processor (whose tokenizer changes its padding state between calls) is
never used from two threads at once.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from nexus_o.inference.cancel import CancelToken
from nexus_o.bundle.omni import OmniModel
from nexus_o.inference.chat import VOICES, PreparedPrompt
from nexus_o.inference.limits import LengthLimits
from nexus_o.processing.conversation import Conversation


@dataclass
class Turn:
    """One request for the model: the shared `Conversation` (media already decoded) and options.

    prompt: the conversation already processed and length-checked (`ChatEngine.prepare`); None:
        `run` prepares it.
    """

    conversation: Conversation
    speak: bool = False
    voice: str | None = None
    max_tokens: int = 256
    prompt: PreparedPrompt | None = None


@dataclass
class TextPiece:
    text: str


@dataclass
class AudioPiece:
    """float32 mono [n] at sample_rate."""

    wav: np.ndarray
    sample_rate: int


@dataclass
class TurnEnd:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


class ChatEngine:
    """Runs turns on the bundle `omni` (model, processor and, for speech, codec); `max_batch`: the
    most text turns `run_batch` will get (their decode graphs are captured at start on CUDA)."""

    def __init__(self, omni: OmniModel, *, max_speech_seconds: float = 30.0, max_batch: int = 1):
        self.omni = omni
        self.model, self.processor = omni.model, omni.processor
        self.max_speech_seconds = max_speech_seconds
        self.limits = LengthLimits.of(self.model)
        processor = omni.processor
        self._request_processor = copy.deepcopy(processor)
        self._request_lock = threading.Lock()
        tokenizer = processor.tokenizer
        self._reserved = sorted({t for t in tokenizer.all_special_tokens + list(tokenizer.get_added_vocab()) if t})
        if self.model.device.type == "cuda":  # capture the decoding graphs before the first request
            omni.warm_up(max_speech_seconds=max_speech_seconds, batch_sizes=tuple(range(2, max_batch + 1)))

    @property
    def can_speak(self) -> bool:
        return self.omni.can_speak

    @property
    def voices(self) -> tuple[str, ...]:
        return VOICES

    @property
    def sample_rate(self) -> int | None:
        return self.omni.codec.sample_rate if self.can_speak else None

    @property
    def video_sampling(self) -> tuple[float, int]:
        """(frames a second, max frames) the processor samples videos at."""
        return float(self.processor.video_fps), int(self.processor.video_max_frames)

    def reserved_tokens(self) -> list[str]:
        """Special-token strings user text may not contain (they would forge structure)."""
        return list(self._reserved)

    @property
    def min_audio_seconds(self) -> float:
        """The shortest audio clip that fills one audio token (shorter ones encode to padding)."""
        extractor = self.processor.feature_extractor
        # Whisper: 2 mel frames per encoder position; the adapter stacks `audio_stack_frames` of them.
        return 2 * self.processor.audio_stack_frames * extractor.hop_length / extractor.sampling_rate

    def count_tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def check_text_length(self, conversation: Conversation, max_prompt_tokens: int | None = None) -> None:
        """Refuse a conversation at once (`ContextLengthError`) when the fewest tokens its rendered text
        could have are already too many. Media parts are left out: they only add tokens."""
        with self._request_lock:
            limits = LengthLimits(self.limits.context, max_prompt_tokens)
            text = self._request_processor.apply_chat_template(conversation, add_generation_prompt=True,
                                                               tokenize=False)
            limits.check_text(text, self._request_processor.tokenizer)

    def prepare(self, conversation: Conversation, max_new_tokens: int,
                max_prompt_tokens: int | None = None) -> PreparedPrompt:
        """Process `conversation` and check its length (`ContextLengthError`) for a reply of
        `max_new_tokens`; safe to call from any thread."""
        with self._request_lock:
            chat = self.omni.session(self._request_processor, max_new_tokens=max_new_tokens,
                                     max_prompt_tokens=max_prompt_tokens)
            return chat.prepare(conversation.to_dict())

    def run(self, turn: Turn, cancel: CancelToken | None = None) -> Iterator[TextPiece | AudioPiece | TurnEnd]:
        """Text pieces, then (if turn.speak) audio pieces, then one `TurnEnd`; `cancel` stops it
        at the next decoding step (raising `Cancelled`)."""
        chat = self.omni.session(max_new_tokens=turn.max_tokens, max_speech_seconds=self.max_speech_seconds)
        prompt = self._prompt(chat, turn)
        modalities = ["text", "audio"] if turn.speak else ["text"]
        texts = []
        for chunk in chat.chat(prompt, modalities=modalities, voice=turn.voice, stream=True, cancel=cancel):
            if chunk.text is not None:
                texts.append(chunk.text)
                yield TextPiece(chunk.text)
            elif chunk.audio is not None and chunk.audio.size:
                yield AudioPiece(chunk.audio, int(chunk.sample_rate))
        yield self._end(prompt, texts, turn.max_tokens)

    def run_batch(self, turns: list[Turn], cancels: list[CancelToken]) -> Iterator[tuple[int, TextPiece | TurnEnd]]:
        """Text-only turns decoded together: (index, TextPiece) as each reply is written, then
        (index, TurnEnd) when it ends; `cancels[i]` stops turn i alone (the others go on)."""
        if any(turn.speak for turn in turns):
            raise ValueError("run_batch writes text replies only; a turn that speaks runs alone (run)")
        chat = self.omni.session(max_new_tokens=max(turn.max_tokens for turn in turns),
                                 max_speech_seconds=self.max_speech_seconds)
        prompts = [self._prompt(chat, turn) for turn in turns]
        texts: list[list[str]] = [[] for _ in turns]
        for index, chunk in chat.chat_batch(prompts, cancels):
            if chunk is None:
                yield index, self._end(prompts[index], texts[index], turns[index].max_tokens)
            else:
                texts[index].append(chunk.text)
                yield index, TextPiece(chunk.text)

    def _prompt(self, chat, turn: Turn) -> PreparedPrompt:
        """The turn's prompt with its own reply budget: prepared now, or (prepared on the request
        thread) checked again against the budget."""
        if turn.prompt is None:
            return chat.prepare(turn.conversation.to_dict(), max_new_tokens=turn.max_tokens)
        self.limits.check(turn.prompt.tokens, turn.max_tokens)
        return dataclasses.replace(turn.prompt, max_new_tokens=turn.max_tokens)

    def _end(self, prompt: PreparedPrompt, texts: list[str], max_tokens: int) -> TurnEnd:
        # OmniChat streams text, not ids: count by re-tokenising the reply. Decoding can merge or
        # split byte-level pieces, so the count is capped at what generation was allowed.
        completion = min(self.count_tokens("".join(texts)), max_tokens)
        return TurnEnd(prompt_tokens=prompt.tokens, completion_tokens=completion,
                       finish_reason="length" if completion >= max_tokens else "stop")
