"""`ChatEngine`: what the server asks of a model, one turn at a time, always as a stream.

It wraps `OmniChat` (the library behind `model.chat`) with the per-request options the HTTP API
has (max_tokens, speech on/off, voice) and adds what OpenAI replies carry besides the text:
token usage and a finish reason. Both the streamed and the whole replies come from the same
stream, so a request past its deadline can stop at the next piece.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from nexus_o.inference.chat import VOICES, OmniChat


@dataclass
class Turn:
    """One request for the model: a processor conversation (media already decoded) and options."""

    conversation: dict
    speak: bool = False
    voice: str | None = None
    max_tokens: int = 256


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
    """Runs turns on `model` (with its processor and, for speech, its attached codec)."""

    def __init__(self, model, processor, *, max_speech_seconds: float = 30.0):
        self.model, self.processor = model, processor
        self.max_speech_seconds = max_speech_seconds

    @property
    def can_speak(self) -> bool:
        return self.model.speech_decoder is not None and self.model.codec is not None

    @property
    def voices(self) -> tuple[str, ...]:
        return VOICES

    @property
    def sample_rate(self) -> int | None:
        return self.model.codec.sample_rate if self.can_speak else None

    @property
    def video_sampling(self) -> tuple[float, int]:
        """(frames a second, max frames) the processor samples videos at."""
        return float(self.processor.video_fps), int(self.processor.video_max_frames)

    def reserved_tokens(self) -> list[str]:
        """Special-token strings user text may not contain (they would forge structure)."""
        tokenizer = self.processor.tokenizer
        return sorted({t for t in tokenizer.all_special_tokens + list(tokenizer.get_added_vocab()) if t})

    def count_tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, conversation: dict) -> int:
        batch = self.processor.apply_chat_template(conversation, add_generation_prompt=True)
        return int(batch["input_ids"].shape[1])

    def run(self, turn: Turn) -> Iterator[TextPiece | AudioPiece | TurnEnd]:
        """Text pieces, then (if turn.speak) audio pieces, then one `TurnEnd`."""
        chat = OmniChat(self.model, self.processor, self.model.codec, max_new_tokens=turn.max_tokens,
                        max_speech_seconds=self.max_speech_seconds)
        modalities = ["text", "audio"] if turn.speak else ["text"]
        texts = []
        for chunk in chat.chat(turn.conversation, modalities=modalities, voice=turn.voice, stream=True):
            if chunk.text is not None:
                texts.append(chunk.text)
                yield TextPiece(chunk.text)
            elif chunk.audio is not None and chunk.audio.size:
                yield AudioPiece(chunk.audio, int(chunk.sample_rate))
        # OmniChat streams text, not ids: count by re-tokenising the reply. Decoding can merge or
        # split byte-level pieces, so the count is capped at what generation was allowed.
        completion = min(self.count_tokens("".join(texts)), turn.max_tokens)
        yield TurnEnd(prompt_tokens=self.prompt_tokens(turn.conversation), completion_tokens=completion,
                      finish_reason="length" if completion >= turn.max_tokens else "stop")
