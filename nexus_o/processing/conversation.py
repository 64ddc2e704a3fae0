"""The one conversation model: messages of typed content parts, shared by data, processing and serve.

Users bring two shapes, and this module is the only place that reads either:

- ms-swift / LLaMA-Factory: `content` is a string with `<image>`, `<video>`, `<audio>` tags, and
  the media come in conversation-level `images` / `videos` / `audios` lists, in tag order;
- OpenAI / Hugging Face: `content` is a list of parts: `{"type": "text", "text"}`,
  `{"type": "image_url", "image_url": {"url"}}`, `{"type": "input_audio", "input_audio": {"data",
  "format"}}` (kept as a `data:` URL), `{"type": "video_url", "video_url": {"url"}}`,
  `{"type": "audio_url", "audio_url": {"url"}}`, or `{"type": "image"|"audio"|"video",
  "image"|"audio"|"video": source}`.

Both become a `Conversation` of `Message`s whose parts are `Text` or `Media(kind, source)`. A
source is whatever the processor can load (a path, a `data:` URL, bytes, a decoded image, a
`(waveform, rate)` pair, a `Video`). Manifest lines (`data.schema`), the chat template
(`processing.chat`) and HTTP requests (`serve.conversation`) all produce or consume it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Union

MODALITIES = ("image", "video", "audio")
"""Input modalities, each with a `<tag>` in tagged text and a plural list field."""

TAG_PATTERN = re.compile(r"<(image|video|audio)>")
ROLES = ("system", "user", "assistant")

Kind = Literal["image", "video", "audio"]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Media:
    kind: Kind
    source: Any


Part = Union[Text, Media]


@dataclass
class Message:
    role: Literal["system", "user", "assistant"]
    parts: list[Part] = field(default_factory=list)

    def tagged(self) -> str:
        """The content as one string, a `<kind>` tag where each media part stands."""
        return "".join(p.text if isinstance(p, Text) else f"<{p.kind}>" for p in self.parts)


@dataclass
class Conversation:
    messages: list[Message] = field(default_factory=list)

    def media(self, kind: str) -> list[Any]:
        """The sources of every `kind` part, in conversation order."""
        return [p.source for m in self.messages for p in m.parts if isinstance(p, Media) and p.kind == kind]

    def to_dict(self) -> dict:
        """The processor's dict form: `{"messages": [{"role", "content": [parts]}]}` (Hugging Face parts)."""
        return {"messages": [{"role": m.role, "content": [
            {"type": "text", "text": p.text} if isinstance(p, Text) else {"type": p.kind, p.kind: p.source}
            for p in m.parts]} for m in self.messages]}

    @classmethod
    def from_messages(cls, messages: list[dict], images: list | None = None, videos: list | None = None,
                      audios: list | None = None) -> "Conversation":
        """Read messages in either shape (they may be mixed). Tags take the listed media in order;
        a tag with no item left, or an item no tag takes, is an error naming both counts."""
        pools = {"image": list(images or []), "video": list(videos or []), "audio": list(audios or [])}
        used = dict.fromkeys(MODALITIES, 0)
        out = cls()
        for m_index, message in enumerate(messages):
            role, content = message.get("role"), message.get("content")
            if role not in ROLES:
                raise ValueError(f"message {m_index} has role {role!r}; expected system, user or assistant")
            if isinstance(content, str):
                parts = []
                for piece in split_tags(content):
                    if not isinstance(piece, Media):
                        parts.append(piece)
                        continue
                    kind = piece.kind
                    if used[kind] >= len(pools[kind]):
                        raise ValueError(f"message {m_index} has more <{kind}> tags than the "
                                         f"{len(pools[kind])} item(s) in the {kind}s list")
                    parts.append(Media(kind, pools[kind][used[kind]]))
                    used[kind] += 1
            elif isinstance(content, list):
                parts = [parse_part(part, p_index) for p_index, part in enumerate(content)]
            else:
                raise ValueError(f"message {m_index} content must be a string or a list of parts, "
                                 f"got {type(content).__name__}")
            out.messages.append(Message(role, parts))
        for kind, pool in pools.items():
            if used[kind] != len(pool):
                raise ValueError(f"the conversation has {used[kind]} <{kind}> tag(s) but {len(pool)} "
                                 f"item(s) in its {kind}s list")
        return out


def split_tags(text: str) -> list[Part]:
    """Tagged text -> `Text` pieces and `Media(kind, None)` where the tags stand (the one tag parser)."""
    pieces = TAG_PATTERN.split(text)  # even indices: text; odd: a tag's kind
    return [Media(piece, None) if i % 2 else Text(piece) for i, piece in enumerate(pieces) if i % 2 or piece]


def count_tags(text: str) -> dict[str, int]:
    """Number of `<image>`, `<video>`, `<audio>` tags in `text`."""
    counts = dict.fromkeys(MODALITIES, 0)
    for part in split_tags(text):
        if isinstance(part, Media):
            counts[part.kind] += 1
    return counts


def parse_part(part: Any, index: int = 0) -> Part:
    """One content part (a dict in the OpenAI or Hugging Face shape, or already a `Text`/`Media`)."""
    if isinstance(part, (Text, Media)):
        return part
    if not isinstance(part, dict):
        raise ValueError(f"content part {index} must be an object, got {type(part).__name__}")
    kind = part.get("type")
    if kind == "text":
        return Text(part.get("text", ""))
    if kind in ("image_url", "video_url", "audio_url"):
        url = part[kind]
        return Media(kind.removesuffix("_url"), url["url"] if isinstance(url, dict) else url)
    if kind == "input_audio":
        audio = part["input_audio"]
        return Media("audio", f"data:audio/{audio.get('format', 'wav')};base64,{audio['data']}")
    if kind in MODALITIES:
        for key in (kind, "url", "path"):
            if key in part:
                return Media(kind, part[key])
        raise ValueError(f"content part {index} of type {kind!r} has no {kind!r}, 'url' or 'path' field")
    raise ValueError(f"content part {index} has unknown type {kind!r}; expected text, image_url, "
                     f"input_audio, video_url, audio_url, image, audio or video")
