"""`OmniModel`: a model with its processor and (for speech) its codec; `chat` talks to it.

The model (`NexusOForConditionalGeneration`) is plain model code: it holds neither processor nor
codec. What a conversation needs besides the weights lives here, in one place, and every chat
(the library's `chat`, the server, the eval runner) is an `OmniChat` built by `session`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nexus_o.codecs.base import SpeechCodec
from nexus_o.inference.chat import OmniChat
from nexus_o.models.modeling import NexusOForConditionalGeneration
from nexus_o.processing.processor import NexusOProcessor

CODEC_SUBDIR = "codec"  # a checkpoint keeps its codec here, next to config.json


@dataclass(eq=False)
class OmniModel:
    """model + processor (+ codec). The codec is checked against the speech decoder at once."""

    model: NexusOForConditionalGeneration
    processor: NexusOProcessor
    codec: SpeechCodec | None = None

    def __post_init__(self) -> None:
        if self.codec is not None and self.model.speech_decoder is not None:
            self.model.speech_decoder.check_codec(self.codec)

    @property
    def can_speak(self) -> bool:
        """True when the model has a speech decoder and a codec to render its codes."""
        return self.model.speech_decoder is not None and self.codec is not None

    def session(self, processor: NexusOProcessor | None = None, **options) -> OmniChat:
        """An `OmniChat` on this bundle; `processor` replaces the bundle's (a per-thread copy),
        `options` are `OmniChat`'s keywords (max_new_tokens, max_prompt_tokens, ...)."""
        return OmniChat(self.model, processor or self.processor, self.codec, **options)

    def chat(self, messages, modalities=("text",), voice: str | None = None, stream: bool = False, **kwargs):
        """Reply to a conversation with text, or text and speech (modalities=["text", "audio"]).

        messages: a message list or a dict with messages + media lists (see `OmniChat.chat`).
        Returns a `ChatReply`, or with stream=True an iterator of `ChatChunk`s.
        """
        return self.session().chat(messages, modalities=modalities, voice=voice, stream=stream, **kwargs)

    def eval(self) -> "OmniModel":
        self.model.eval()
        return self

    def save_pretrained(self, folder: str | Path, state_dict: dict | None = None) -> Path:
        """Write model, processor and (if any) codec, the layout `load_model` reads back.

        state_dict: the model's weights when they are not in `self.model` itself (gathered from
        an FSDP-sharded model, say)."""
        folder = Path(folder)
        self.model.save_pretrained(folder, state_dict=state_dict)
        self.processor.save_pretrained(folder)
        if self.codec is not None:
            self.codec.save_pretrained(folder / CODEC_SUBDIR)
        return folder
