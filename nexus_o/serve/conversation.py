"""An OpenAI chat request -> a `Turn` for the engine: options checked, media decoded within limits.

Everything a client can get wrong is found here, before the request takes a place in the model
queue, and answered with a 400 naming the field: text that cannot be tokenized, empty content,
bad media, and a prompt longer than the model's context or `max_prompt_tokens` (OpenAI's
`context_length_exceeded`, naming both numbers). The request becomes the shared `Conversation`
(`processing.conversation`) whose media are decoded objects (PIL images, (waveform, rate) pairs,
`Video`s), so the processor never opens a file or URL on a client's behalf.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections import OrderedDict

from nexus_o.inference.limits import ContextLengthError
from nexus_o.processing.conversation import Conversation, Media, Message, Part, Text
from nexus_o.serve.audio_out import STREAM_FORMATS
from nexus_o.serve.engine import ChatEngine, Turn
from nexus_o.serve.errors import ApiError, bad_request
from nexus_o.serve.request_media import b64decode, decode_audio, decode_image, decode_video, media_bytes
from nexus_o.serve.schemas import AudioPart, ChatCompletionRequest, ImagePart, RefusalPart, TextPart, VideoPart
from nexus_o.serve.settings import ServeSettings


class TranscriptStore:
    """Reply audio ids -> transcripts, so a later turn may refer to an earlier reply by `audio.id`.

    Entries expire after `ttl` seconds (the reply's `expires_at`); at most `max_items` are kept.
    """

    def __init__(self, ttl: int, max_items: int = 4096):
        self.ttl, self.max_items = ttl, max_items
        self._items: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def new_id() -> str:
        return f"audio_{secrets.token_hex(12)}"

    def put(self, audio_id: str, transcript: str) -> int:
        """Store the transcript of reply audio `audio_id`; returns its expires_at (unix seconds)."""
        expires = int(time.time()) + self.ttl
        with self._lock:
            self._items[audio_id] = (transcript, expires)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return expires

    def get(self, audio_id: str) -> str | None:
        with self._lock:
            item = self._items.get(audio_id)
            if item is None or item[1] < time.time():
                self._items.pop(audio_id, None)
                return None
            return item[0]


def _speech_options(request: ChatCompletionRequest, engine: ChatEngine) -> str | None:
    """The voice to speak with (None when no speech is asked for); 400 on a bad combination."""
    if not request.speak:
        return None
    if not engine.can_speak:
        raise bad_request("this model has no speech output (no speech decoder or codec); ask for "
                          "modalities ['text']", param="modalities", code="audio_output_unavailable")
    if request.audio is None:
        raise bad_request("modalities includes 'audio' but the 'audio' parameter {voice, format} is missing",
                          param="audio", code="missing_audio_parameter")
    voice = request.audio.voice if isinstance(request.audio.voice, str) else request.audio.voice.id
    if voice not in engine.voices:
        raise bad_request(f"unknown voice {voice!r}; this model speaks with: {list(engine.voices)}",
                          param="audio.voice", code="invalid_voice")
    if request.stream and request.audio.format not in STREAM_FORMATS:
        raise bad_request(f"streamed audio is sent as {' or '.join(STREAM_FORMATS)}; got format "
                          f"{request.audio.format!r}", param="audio.format", code="unsupported_stream_format")
    return voice


def _asked_tokens(request: ChatCompletionRequest, settings: ServeSettings) -> tuple[int | None, str]:
    """(the reply budget the request asks for or None, the field that asked); 400 over the server's cap."""
    name = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
    asked = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    if asked is not None and asked > settings.max_tokens:
        raise bad_request(f"{name}={asked} exceeds this server's limit of {settings.max_tokens}", param=name,
                          code="max_tokens_too_large")
    return asked, name


def _check_text(text: str, reserved: list[str], param: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise bad_request(f"{param} is not valid Unicode text: {err.reason} at character {err.start}; send UTF-8 "
                          f"text (a lone UTF-16 surrogate such as \\ud800 cannot be tokenized)", param=param,
                          code="invalid_text") from None
    for token in reserved:
        if token in text:
            raise bad_request(f"{param} contains the reserved token {token!r}", param=param, code="reserved_token")
    return text


def _text_fields(request: ChatCompletionRequest):
    """(param, text) of every client text the prompt will hold."""
    for i, message in enumerate(request.messages):
        where = f"messages[{i}].content"
        if isinstance(message.content, str):
            yield where, message.content
        elif isinstance(message.content, list):
            for j, part in enumerate(message.content):
                if isinstance(part, TextPart):
                    yield f"{where}[{j}].text", part.text
                elif isinstance(part, RefusalPart):
                    yield f"{where}[{j}].refusal", part.refusal


def _check_texts(request: ChatCompletionRequest, engine: ChatEngine, settings: ServeSettings) -> None:
    """Every text field is tokenizable and free of reserved tokens, and the prompt they make cannot
    be over the limit: a bound from the characters of the rendered text alone (no tokenizing, no
    media), so that a megabyte of text or twenty thousand messages are refused at once."""
    reserved = engine.reserved_tokens()
    for param, text in _text_fields(request):
        _check_text(text, reserved, param)
    text_only = Conversation([Message("system" if m.role == "developer" else m.role,
                                      [Text(m.content)] if isinstance(m.content, str) else
                                      [Text(p.text if isinstance(p, TextPart) else p.refusal)
                                       for p in m.content or [] if isinstance(p, (TextPart, RefusalPart))])
                              for m in request.messages])
    try:
        engine.check_text_length(text_only, settings.max_prompt_tokens)
    except ContextLengthError as err:
        raise _context_error(err, "max_tokens") from None


def _context_error(err: ContextLengthError, budget_field: str) -> ApiError:
    """OpenAI's answer to a prompt over the context: 400 context_length_exceeded."""
    param = "messages" if err.field == "prompt" else budget_field
    return bad_request(str(err).replace("max_new_tokens", budget_field), param=param,
                       code="context_length_exceeded")


def _count_media(request: ChatCompletionRequest, settings: ServeSettings) -> None:
    count = sum(isinstance(part, (ImagePart, AudioPart, VideoPart))
                for m in request.messages if isinstance(m.content, list) for part in m.content)
    if count > settings.max_media_parts:
        raise bad_request(f"the request holds {count} media parts; this server accepts at most "
                          f"{settings.max_media_parts}", param="messages", code="too_many_media")


def _media_part(part, engine: ChatEngine, settings: ServeSettings, param: str) -> Media:
    if isinstance(part, ImagePart):
        data = media_bytes(part.image_url.url, "image", settings, f"{param}.image_url.url")
        return Media("image", decode_image(data, settings, f"{param}.image_url.url"))
    if isinstance(part, AudioPart):
        data = b64decode(part.input_audio.data, f"{param}.input_audio.data")
        wav, rate = decode_audio(data, part.input_audio.format, settings, f"{param}.input_audio.data",
                                 min_seconds=engine.min_audio_seconds)
        return Media("audio", (wav, rate))
    fps, max_frames = engine.video_sampling
    data = media_bytes(part.video_url.url, "video", settings, f"{param}.video_url.url")
    return Media("video", decode_video(data, settings, f"{param}.video_url.url", fps, max_frames))


def _content_parts(i: int, message, role: str, engine: ChatEngine, settings: ServeSettings,
                   transcripts: TranscriptStore) -> list[Part]:
    where = f"messages[{i}].content"
    if message.content is None:
        if role != "assistant" or message.audio is None:
            raise bad_request(f"{where} is required", param=where, code="missing_content")
        transcript = transcripts.get(message.audio.id)
        if transcript is None:
            raise bad_request(f"messages[{i}].audio.id {message.audio.id!r} is unknown or expired; send the "
                              f"reply's transcript as content instead", param=f"messages[{i}].audio.id",
                              code="audio_not_found")
        return [Text(transcript)]
    # What OpenAI documents (its published OpenAPI spec, as quoted in openai/openai-python#1812, and
    # the API's own errors, e.g. "Invalid 'messages[2].tool_calls': empty array. Expected an array
    # with minimum length 1", code empty_array): a content-part array has minItems 1. The spec sets
    # no minLength on string content and no minItems on `modalities`; we refuse an empty user or
    # system message anyway (it carries nothing to answer) but accept an assistant's "", which
    # clients echo back, and the schema refuses `modalities: []` (it would ask for no output).
    if isinstance(message.content, str):
        if not message.content and role != "assistant":
            raise bad_request(f"{where} is empty; send text or content parts", param=where, code="empty_content")
        return [Text(message.content)]
    if not message.content:
        raise bad_request(f"{where} is an empty array; expected at least one content part", param=where,
                          code="empty_array")
    parts = []
    for j, part in enumerate(message.content):
        param = f"{where}[{j}]"
        if isinstance(part, TextPart):
            parts.append(Text(part.text))
        elif isinstance(part, RefusalPart):
            if role != "assistant":
                raise bad_request(f"{param}: refusal parts belong to assistant messages", param=param,
                                  code="invalid_content_part")
            parts.append(Text(part.refusal))
        elif role != "user":
            raise bad_request(f"{param}: media parts are accepted in user messages only", param=param,
                              code="invalid_content_part")
        else:
            parts.append(_media_part(part, engine, settings, param))
    return parts


def build_turn(request: ChatCompletionRequest, engine: ChatEngine, settings: ServeSettings,
               transcripts: TranscriptStore) -> Turn:
    """Check `request`, decode its media and process the prompt (CPU work: call it off the event loop).

    Cheap checks come first (options, text fields, a character bound on the prompt's length),
    then media decoding, then the exact token count against the context and `max_prompt_tokens`.
    """
    if request.n not in (None, 1):
        raise bad_request("only n=1 is supported", param="n", code="unsupported_value")
    voice = _speech_options(request, engine)
    asked, budget_field = _asked_tokens(request, settings)
    _count_media(request, settings)
    _check_texts(request, engine, settings)
    conversation = Conversation()
    for i, message in enumerate(request.messages):
        role = "system" if message.role == "developer" else message.role
        conversation.messages.append(Message(role, _content_parts(i, message, role, engine, settings, transcripts)))
    try:
        prompt = engine.prepare(conversation, asked or 1, settings.max_prompt_tokens)
    except ContextLengthError as err:
        raise _context_error(err, budget_field) from None
    except ValueError as err:  # the processor refused the content (e.g. an image's aspect ratio)
        raise bad_request(f"messages: {err}", param="messages", code="invalid_content") from None
    max_tokens = asked if asked is not None else min(settings.max_tokens, engine.limits.room(prompt.tokens))
    return Turn(conversation=conversation, speak=voice is not None, voice=voice, max_tokens=max_tokens,
                prompt=dataclasses.replace(prompt, max_new_tokens=max_tokens))
