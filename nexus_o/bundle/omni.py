"""`OmniModel`: a model with its processor and (for speech) its codec; `chat` talks to it.

The model (`NexusOForConditionalGeneration`) is plain model code: it holds neither processor nor
codec. What a conversation needs besides the weights lives here, in one place, and every chat
(the library's `chat`, the server, the eval runner) is an `OmniChat` built by `session`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nexus_o.codecs.base import SpeechCodec
from nexus_o.inference.chat import OmniChat
from nexus_o.models.modeling import NexusOForConditionalGeneration
from nexus_o.processing.processor import NexusOProcessor
from nexus_o.processing.tokenizer import AUDIO_TOKENS

CODEC_SUBDIR = "codec"  # a checkpoint keeps its codec here, next to config.json


@dataclass(eq=False)
class OmniModel:
    """model + processor (+ codec). The codec is checked against the speech decoder at once, and
    the config's audio token ids against the processor's tokenizer."""

    model: NexusOForConditionalGeneration
    processor: NexusOProcessor
    codec: SpeechCodec | None = None

    def __post_init__(self) -> None:
        check_audio_tokens(self.model.config, self.processor.tokenizer)
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

    def warm_up(self, max_new_tokens: int = 256, batch_sizes: tuple[int, ...] = (), **options) -> float:
        """Run one reply (spoken where the bundle can speak, up to its first audio chunk) with a reply budget of
        `max_new_tokens`, so that the decoding graphs of that size are captured (CUDA) before the
        first user pays for them; then the first steps of a text batch of each of `batch_sizes`
        rows (one decode graph per row count). Returns the seconds it took. `options`: `session`
        keywords."""
        start = time.perf_counter()
        chat = self.session(max_new_tokens=max_new_tokens, **options)
        prompt = chat.prepare([{"role": "user", "content": "Hello."}])
        modalities = ["text", "audio"] if self.can_speak else ["text"]
        stream = chat.chat(prompt, modalities=modalities, stream=True)
        for chunk in stream:
            if chunk.audio is not None:  # both graphs exist once the first audio is out
                break
        stream.close()
        for rows in batch_sizes:
            batch = chat.chat_batch([prompt] * rows)
            next(batch, None)  # the first piece comes after the first decode step: its graph is captured
            batch.close()
        return time.perf_counter() - start

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


def check_audio_tokens(config, tokenizer) -> None:
    """The config's `audio_start_token_id` / `audio_token_id` / `audio_end_token_id` must be the
    tokenizer's ids of `<|audio_bos|>` / `<|AUDIO|>` / `<|audio_eos|>`; the error names both sides."""
    for key, token in zip(("audio_start_token_id", "audio_token_id", "audio_end_token_id"), AUDIO_TOKENS):
        in_config, in_tokenizer = getattr(config, key), tokenizer.convert_tokens_to_ids(token)
        if in_config != in_tokenizer:
            raise ValueError(f"model config {key}={in_config} but the processor's tokenizer has {token} at id "
                             f"{in_tokenizer}; the model and processor do not belong together")
