"""Request and response bodies of `POST /v1/chat/completions`, in the OpenAI Chat Completions schema.

Requests: messages with string content or content parts `text`, `image_url` {url, detail},
`input_audio` {data, format: wav | mp3 | flac | pcm16} (pcm16: raw signed 16-bit little-endian
mono at 24 kHz, as OpenAI defines it), `video_url` {url}; `modalities` ["text"] or
["text", "audio"]; `audio` {voice, format: wav | mp3 | flac | opus | aac | pcm16}.
Unknown fields are refused (400 naming the field), and types are strict as in OpenAI's schema:
a boolean is not a number (`max_tokens: true` is refused) and a string is not a boolean
(`stream_options.include_usage: "yes"` is refused); integers are accepted where floats are.
`modalities` may not be empty (it would ask for no output at all). temperature, top_p, seed,
stop, penalties, user, metadata and store are accepted for client compatibility and have no
effect: decoding is greedy.

Replies mirror OpenAI's: with audio, `message.content` is null and the text is the audio's
`transcript`; streamed, the text comes as `delta.content` (text only) or as
`delta.audio.transcript` (with audio), audio as `delta.audio.data` pieces and a last
`delta.audio.expires_at` update.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field

from nexus_o.config import StrictModel

INPUT_AUDIO_FORMATS = ("wav", "mp3", "flac", "pcm16")
OUTPUT_AUDIO_FORMATS = ("wav", "mp3", "flac", "opus", "aac", "pcm16")


# -- request ------------------------------------------------------------------------------------
class TextPart(StrictModel, strict=True):
    type: Literal["text"]
    text: str


class ImageURL(StrictModel, strict=True):
    url: str
    detail: Literal["auto", "low", "high"] = "auto"


class ImagePart(StrictModel, strict=True):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(StrictModel, strict=True):
    data: str
    format: Literal["wav", "mp3", "flac", "pcm16"]


class AudioPart(StrictModel, strict=True):
    type: Literal["input_audio"]
    input_audio: InputAudio


class VideoURL(StrictModel, strict=True):
    url: str


class VideoPart(StrictModel, strict=True):
    type: Literal["video_url"]
    video_url: VideoURL


class RefusalPart(StrictModel, strict=True):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[Union[TextPart, ImagePart, AudioPart, VideoPart, RefusalPart], Field(discriminator="type")]


class AudioRef(StrictModel, strict=True):
    """An earlier reply's audio, named by its id (resolves to its transcript until it expires)."""

    id: str


class Message(StrictModel, strict=True):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    audio: AudioRef | None = None
    refusal: str | None = None


class VoiceRef(StrictModel, strict=True):
    id: str


class AudioParam(StrictModel, strict=True):
    voice: str | VoiceRef
    format: Literal["wav", "mp3", "flac", "opus", "aac", "pcm16"]


class StreamOptions(StrictModel, strict=True):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ChatCompletionRequest(StrictModel, strict=True):
    model: str
    messages: list[Message] = Field(min_length=1)
    modalities: list[Literal["text", "audio"]] | None = Field(None, min_length=1)
    audio: AudioParam | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(1, ge=1)
    # accepted for compatibility, no effect (greedy decoding)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None

    @property
    def speak(self) -> bool:
        return "audio" in (self.modalities or ())


# -- response -----------------------------------------------------------------------------------
class AudioOut(BaseModel):
    id: str
    data: str
    expires_at: int
    transcript: str


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    audio: AudioOut | None = None


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class DeltaAudio(BaseModel):
    id: str | None = None
    data: str | None = None
    expires_at: int | None = None
    transcript: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    audio: DeltaAudio | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "nexus-o"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
