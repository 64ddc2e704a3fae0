"""The training-sample schema: one JSONL line of a manifest, validated with pydantic.

A line has the shape ms-swift and LLaMA-Factory users already write::

    {"messages": [{"role": "user", "content": "<audio>What is said?"},
                  {"role": "assistant", "content": "hello"}],
     "audios": ["clips/a.wav"]}

- ``images`` / ``videos`` / ``audios`` list media files in the order their ``<image>`` /
  ``<video>`` / ``<audio>`` tags appear across all messages; the counts must match.
- ``speech`` (stage 3) is the spoken form of the last assistant message: either
  ``{"audio": "target.wav"}`` or ``{"codes": "codes.npy"}`` / ``{"codes": [[...], ...]}``,
  codes shaped ``[K codebooks, T frames]``, optionally with ``"words": [{"word": "red", "start":
  0.05, "end": 0.41}, ...]``: when each word of the reply is spoken, in seconds from the start of
  the target (the shape of Whisper's word timestamps; the "pointer" speech-decoder alignment
  reads them). ``reference_audio`` is an optional voice prompt.
- ``task`` and ``id`` are optional labels.

OpenAI-style content parts are accepted too; they are checked here (the manifest's wire format)
and read by ``processing.conversation`` (the one reader of tags and parts) into a tagged string
and the media lists, so everything downstream sees one shape::

    {"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "<base64>", "format": "wav"}},
        {"type": "image_url", "image_url": {"url": "cat.png"}},
        {"type": "text", "text": "Describe both."}]}

Part types: ``text``; ``image_url`` / ``video_url`` / ``audio_url`` (``{"url": ...}``);
``input_audio`` (base64 ``data`` + ``format``, kept as a ``data:`` URI); and the Qwen-style
``{"type": "image", "image": path}`` (likewise ``audio``, ``video``). A sample gives a
modality's media either as parts or as a top-level list, not both.

Media references are local paths (relative ones resolve against the manifest's folder) or
``data:`` URIs; remote URLs are rejected because nothing is fetched at run time.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Annotated, Literal, Union

from pydantic import Field, StrictInt, field_validator, model_validator

from nexus_o.config import StrictModel
from nexus_o.processing.conversation import MODALITIES, Conversation, Media, count_tags, parse_part
from nexus_o.processing.conversation import Message as ChatMessage


class _Url(StrictModel):
    url: str
    detail: str | None = None  # OpenAI image detail hint; accepted, unused in training


class _InputAudio(StrictModel):
    data: str
    format: str = Field(min_length=1)


class TextPart(StrictModel):
    type: Literal["text"]
    text: str


class ImageUrlPart(StrictModel):
    type: Literal["image_url"]
    image_url: _Url


class VideoUrlPart(StrictModel):
    type: Literal["video_url"]
    video_url: _Url


class AudioUrlPart(StrictModel):
    type: Literal["audio_url"]
    audio_url: _Url


class InputAudioPart(StrictModel):
    type: Literal["input_audio"]
    input_audio: _InputAudio


class ImagePart(StrictModel):
    type: Literal["image"]
    image: str


class AudioPart(StrictModel):
    type: Literal["audio"]
    audio: str


class VideoPart(StrictModel):
    type: Literal["video"]
    video: str


ContentPart = Annotated[
    Union[TextPart, ImageUrlPart, VideoUrlPart, AudioUrlPart, InputAudioPart, ImagePart, AudioPart, VideoPart],
    Field(discriminator="type"),
]


class Message(StrictModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart]


class WordTiming(StrictModel):
    """When one word of the spoken reply is said: seconds from the start of the target."""

    word: str = Field(min_length=1)
    start: float = Field(ge=0)
    end: float

    @model_validator(mode="after")
    def _ordered(self) -> "WordTiming":
        if self.end <= self.start:
            raise ValueError(f"word {self.word!r}: end {self.end} is not after start {self.start}")
        return self


class SpeechTarget(StrictModel):
    """Speech output for stage 3: a waveform file, or codec codes ``[K, T]`` (file or inline),
    and optionally the words' timings in it (in reply order, not overlapping)."""

    audio: str | None = None
    codes: str | list[list[StrictInt]] | None = None
    words: list[WordTiming] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "SpeechTarget":
        if (self.audio is None) == (self.codes is None):
            raise ValueError("speech needs exactly one of 'audio' (a file) or 'codes' (a .npy file or [K][T] ints)")
        for i, (before, after) in enumerate(zip(self.words or [], (self.words or [])[1:]), start=1):
            if after.start < before.end:
                raise ValueError(f"speech.words[{i}] ({after.word!r}) starts at {after.start}, before "
                                 f"speech.words[{i - 1}] ({before.word!r}) ends at {before.end}")
        if isinstance(self.codes, list):
            check_code_rows(self.codes)
        elif isinstance(self.codes, str) and not self.codes.endswith(".npy"):
            raise ValueError(f"speech.codes file must be a .npy array, got {self.codes!r}")
        return self


class Sample(StrictModel, validate_assignment=False):
    """One validated training sample. After validation every ``content`` is a string.

    Assignments are not validated: the validator below moves media from content parts into the
    lists, which must not run the validator again.
    """

    messages: list[Message] = Field(min_length=1)
    images: list[str] = Field(default_factory=list)
    videos: list[str] = Field(default_factory=list)
    audios: list[str] = Field(default_factory=list)
    speech: SpeechTarget | None = None
    reference_audio: str | None = None
    task: str | None = Field(default=None, min_length=1)
    id: str | int | None = None

    @field_validator("images", "videos", "audios")
    @classmethod
    def _media_refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            check_media_ref(ref)
        return refs

    @model_validator(mode="after")
    def _normalise_and_check(self) -> "Sample":
        _flatten_parts(self)
        roles = [m.role for m in self.messages]
        if "system" in roles[1:]:
            raise ValueError(f"a system message may only come first (roles: {roles})")
        if "assistant" not in roles:
            raise ValueError(f"no assistant message to learn from (roles: {roles})")
        if self.speech is not None and roles[-1] != "assistant":
            raise ValueError("'speech' is the spoken last assistant message, but the last message is from "
                             f"{roles[-1]!r}")
        counts = tag_counts(self)
        for modality in MODALITIES:
            listed = len(getattr(self, modality + "s"))
            if counts[modality] != listed:
                raise ValueError(f"{counts[modality]} <{modality}> tag(s) in messages but {listed} "
                                 f"entr{'y' if listed == 1 else 'ies'} in '{modality}s'")
        for ref in filter(None, (self.reference_audio, self.speech and self.speech.audio)):
            check_media_ref(ref)
        return self


def check_code_rows(rows: list[list[int]]) -> None:
    """Check inline speech codes: K >= 1 non-empty rows of equal length, non-negative ints."""
    if not rows or not rows[0]:
        raise ValueError("speech.codes must be K >= 1 non-empty lists (shape [K, T])")
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise ValueError(f"speech.codes rows differ in length {sorted(lengths)}; expected shape [K, T]")
    if any(c < 0 for r in rows for c in r):
        raise ValueError("speech.codes holds negative ids")


def check_media_ref(ref: str) -> None:
    """Reject empty references and remote URLs (nothing is downloaded at run time)."""
    if not ref.strip():
        raise ValueError("empty media path")
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://", ref)
    if scheme and scheme.group(1).lower() != "file":
        raise ValueError(f"remote media {ref[:80]!r} is not fetched at run time; download it and list the local path")


def tag_counts(sample: Sample) -> dict[str, int]:
    """Number of ``<image>``, ``<video>``, ``<audio>`` tags over all (string) message contents."""
    counts = dict.fromkeys(MODALITIES, 0)
    for message in sample.messages:
        for kind, n in count_tags(str(message.content)).items():
            counts[kind] += n
    return counts


def sample_conversation(sample: Sample) -> Conversation:
    """The shared `Conversation` of a validated sample (its media in tag order)."""
    return Conversation.from_messages([{"role": m.role, "content": m.content} for m in sample.messages],
                                      sample.images, sample.videos, sample.audios)


def resolve_ref(ref: str, base_dir: str) -> str:
    """Absolute path for a manifest media reference; ``data:`` URIs pass through unchanged.

    Symlinks are kept (no ``realpath``) so that links into shared caches stay links.
    """
    if ref.startswith("data:"):
        return ref
    if ref.startswith("file://"):
        ref = ref[len("file://"):]
    return os.path.abspath(os.path.join(base_dir, os.path.expanduser(ref)))


def resolve_sample_paths(sample: Sample, base_dir: str) -> Sample:
    """Resolve every media reference of ``sample`` against ``base_dir`` (in place; returned)."""
    for modality in MODALITIES:
        key = modality + "s"
        setattr(sample, key, [resolve_ref(r, base_dir) for r in getattr(sample, key)])
    if sample.reference_audio is not None:
        sample.reference_audio = resolve_ref(sample.reference_audio, base_dir)
    if sample.speech is not None:
        if sample.speech.audio is not None:
            sample.speech.audio = resolve_ref(sample.speech.audio, base_dir)
        if isinstance(sample.speech.codes, str):
            sample.speech.codes = resolve_ref(sample.speech.codes, base_dir)
    return sample


def _flatten_parts(sample: Sample) -> None:
    """Turn content-part lists into tagged strings, moving their media into the lists."""
    from_parts: dict[str, list[str]] = {m: [] for m in MODALITIES}
    for message in sample.messages:
        if isinstance(message.content, str):
            continue
        for part in message.content:
            if isinstance(part, InputAudioPart):
                try:  # validate now: a broken payload must fail at its line, not when loaded
                    base64.b64decode(part.input_audio.data, validate=True)
                except (binascii.Error, ValueError) as err:
                    raise ValueError(f"input_audio.data is not valid base64 ({err})") from None
        parsed = ChatMessage(message.role, [parse_part(p.model_dump()) for p in message.content])
        for part in parsed.parts:
            if isinstance(part, Media):
                check_media_ref(part.source)
                from_parts[part.kind].append(part.source)
        message.content = parsed.tagged()
    for modality, refs in from_parts.items():
        if not refs:
            continue
        key = modality + "s"
        if getattr(sample, key):
            raise ValueError(f"{modality} media given both as content parts and in '{key}'; use one form")
        setattr(sample, key, refs)
