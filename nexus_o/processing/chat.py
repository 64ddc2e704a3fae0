"""Chat messages -> prompt text with one placeholder per media item, plus the media in order.

Messages come in either shape `processing.conversation` reads (tagged strings with media lists,
or content-part lists), or as a `Conversation` already.

The template is Qwen2.5-VL's (ChatML, default system prompt), with audio framed as
`<|audio_bos|><|AUDIO|><|audio_eos|>` like Qwen2.5-Omni.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nexus_o.processing.conversation import Conversation, Media

DEFAULT_SYSTEM = "You are a helpful assistant."
PLACEHOLDER = {
    "image": "<|vision_start|><|image_pad|><|vision_end|>",
    "video": "<|vision_start|><|video_pad|><|vision_end|>",
    "audio": "<|audio_bos|><|AUDIO|><|audio_eos|>",
}


@dataclass
class RenderedChat:
    """Prompt text and the media it refers to, each list in placeholder order."""

    text: str
    images: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)


def render_chat(messages: list[dict] | Conversation, images: list | None = None, videos: list | None = None,
                audios: list | None = None, add_generation_prompt: bool = False,
                system_prompt: str | None = DEFAULT_SYSTEM) -> RenderedChat:
    """Render one conversation; tag counts must match the media lists (error names both)."""
    conversation = (messages if isinstance(messages, Conversation)
                    else Conversation.from_messages(messages, images, videos, audios))
    if not conversation.messages:
        raise ValueError("a conversation needs at least one message")
    chunks: list[str] = []
    if conversation.messages[0].role != "system" and system_prompt is not None:
        chunks.append(f"<|im_start|>system\n{system_prompt}<|im_end|>\n")
    for message in conversation.messages:
        body = "".join(PLACEHOLDER[p.kind] if isinstance(p, Media) else p.text for p in message.parts)
        chunks.append(f"<|im_start|>{message.role}\n{body}<|im_end|>\n")
    if add_generation_prompt:
        chunks.append("<|im_start|>assistant\n")
    return RenderedChat("".join(chunks), *(conversation.media(kind) for kind in ("image", "video", "audio")))
