"""Chat messages -> prompt text with one placeholder per media item, plus the media in order.

Two message shapes are accepted, as users already have them:

- ms-swift / LLaMA-Factory: `content` is a string with `<image>`, `<video>`, `<audio>` tags, and
  the media come in sample-level `images` / `videos` / `audios` lists, in tag order;
- OpenAI / Hugging Face: `content` is a list of parts: `{"type": "text", "text"}`,
  `{"type": "image_url", "image_url": {"url"}}`, `{"type": "input_audio", "input_audio": {"data",
  "format"}}`, `{"type": "video_url", "video_url": {"url"}}`, or `{"type": "image"|"audio"|"video",
  "image"|"audio"|"video": source}`.

The template is Qwen2.5-VL's (ChatML, default system prompt), with audio framed as
`<|audio_bos|><|AUDIO|><|audio_eos|>` like Qwen2.5-Omni.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SYSTEM = "You are a helpful assistant."
PLACEHOLDER = {
    "image": "<|vision_start|><|image_pad|><|vision_end|>",
    "video": "<|vision_start|><|video_pad|><|vision_end|>",
    "audio": "<|audio_bos|><|AUDIO|><|audio_eos|>",
}
_TAG = re.compile(r"<(image|video|audio)>")


@dataclass
class RenderedChat:
    """Prompt text and the media it refers to, each list in placeholder order."""

    text: str
    images: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)


def _part_media(part: dict, index: int) -> tuple[str, Any]:
    kind = part.get("type")
    if kind == "image_url":
        url = part["image_url"]
        return "image", url["url"] if isinstance(url, dict) else url
    if kind == "video_url":
        url = part["video_url"]
        return "video", url["url"] if isinstance(url, dict) else url
    if kind == "input_audio":
        audio = part["input_audio"]
        return "audio", f"data:audio/{audio.get('format', 'wav')};base64,{audio['data']}"
    if kind in ("image", "video", "audio"):
        for key in (kind, "url", "path"):
            if key in part:
                return kind, part[key]
        raise ValueError(f"content part {index} of type {kind!r} has no {kind!r}, 'url' or 'path' field")
    raise ValueError(f"content part {index} has unknown type {kind!r}; expected text, image_url, "
                     f"input_audio, video_url, image, audio or video")


def render_chat(messages: list[dict], images: list | None = None, videos: list | None = None,
                audios: list | None = None, add_generation_prompt: bool = False,
                system_prompt: str | None = DEFAULT_SYSTEM) -> RenderedChat:
    """Render one conversation; tag counts must match the media lists (error names both)."""
    if not messages:
        raise ValueError("a conversation needs at least one message")
    pools = {"image": list(images or []), "video": list(videos or []), "audio": list(audios or [])}
    used = {"image": 0, "video": 0, "audio": 0}
    out = RenderedChat(text="")
    chunks: list[str] = []
    if messages[0].get("role") != "system" and system_prompt is not None:
        chunks.append(f"<|im_start|>system\n{system_prompt}<|im_end|>\n")
    for m_index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"message {m_index} has role {role!r}; expected system, user or assistant")
        body: list[str] = []
        if isinstance(content, str):
            for piece in _TAG.split(content):
                if piece in PLACEHOLDER:
                    if used[piece] >= len(pools[piece]):
                        raise ValueError(f"message {m_index} has more <{piece}> tags than the "
                                         f"{len(pools[piece])} item(s) in the {piece}s list")
                    getattr(out, piece + "s").append(pools[piece][used[piece]])
                    used[piece] += 1
                    body.append(PLACEHOLDER[piece])
                else:
                    body.append(piece)
        elif isinstance(content, list):
            for p_index, part in enumerate(content):
                if part.get("type") == "text":
                    body.append(part.get("text", ""))
                    continue
                kind, source = _part_media(part, p_index)
                getattr(out, kind + "s").append(source)
                body.append(PLACEHOLDER[kind])
        else:
            raise ValueError(f"message {m_index} content must be a string or a list of parts, "
                             f"got {type(content).__name__}")
        chunks.append(f"<|im_start|>{role}\n{''.join(body)}<|im_end|>\n")
    for kind, pool in pools.items():
        if used[kind] != len(pool):
            raise ValueError(f"the conversation has {used[kind]} <{kind}> tag(s) but {len(pool)} "
                             f"item(s) in its {kind}s list")
    if add_generation_prompt:
        chunks.append("<|im_start|>assistant\n")
    out.text = "".join(chunks)
    return out
