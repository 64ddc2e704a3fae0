"""Engine pieces -> an OpenAI `chat.completion`, or `chat.completion.chunk` Server-Sent Events.

Streamed, a text-only reply is: a first chunk `delta {role, content: ""}`, one chunk per text
piece `delta {content}`, a last chunk `delta {}` with `finish_reason`, optionally a usage chunk
(`stream_options.include_usage`: `choices: []`), then `data: [DONE]`. With audio, text pieces
come as `delta.audio {id, transcript}`, then `delta.audio {id, data}` pieces of pcm16 audio
(24 kHz), then `delta.audio {id, expires_at}`, then the finish chunk, as OpenAI streams them.
An error after the stream has started arrives as one `data: {"error": {...}}` event.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator

import numpy as np

from nexus_o.serve.audio_out import Pcm16Stream, encode_audio
from nexus_o.serve.conversation import TranscriptStore
from nexus_o.serve.engine import AudioPiece, TextPiece, TurnEnd
from nexus_o.serve.errors import ApiError
from nexus_o.inference.limits import ContextLengthError
from nexus_o.serve.queue import JobCancelled, JobTimeout, QueueWaitTimeout
from nexus_o.serve.schemas import (
    AudioOut,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    DeltaAudio,
    ResponseMessage,
    Usage,
)

log = logging.getLogger("nexus_o.serve")


def as_api_error(err: BaseException) -> ApiError:
    """Map an error raised while answering to what the client sees (never a stack trace)."""
    if isinstance(err, ApiError):
        return err
    if isinstance(err, JobTimeout):
        return ApiError(504, "the model did not finish the reply within the server's request timeout",
                        type="timeout_error", code="timeout")
    if isinstance(err, QueueWaitTimeout):
        return ApiError(503, "the server is busy: the request waited too long for the model; retry later",
                        type="server_error", code="queue_timeout", headers={"Retry-After": "1"})
    if isinstance(err, JobCancelled):
        return ApiError(499, f"the request was cancelled ({err})", code="client_closed_request")
    if isinstance(err, ContextLengthError):
        return ApiError(400, str(err), param="messages", code="context_length_exceeded")
    if isinstance(err, ValueError):  # the library's input checks (bad media, template, voice)
        return ApiError(400, str(err), code="invalid_request")
    log.error("error while answering a request", exc_info=err)
    return ApiError(500, "the server had an internal error while processing the request", type="server_error",
                    code="internal_error")


def _usage(end: TurnEnd) -> Usage:
    return Usage(prompt_tokens=end.prompt_tokens, completion_tokens=end.completion_tokens,
                 total_tokens=end.prompt_tokens + end.completion_tokens)


class ReplyBuilder:
    """Builds the reply to one request from the engine's pieces."""

    def __init__(self, request: ChatCompletionRequest, model_name: str, transcripts: TranscriptStore):
        self.request, self.model_name, self.transcripts = request, model_name, transcripts
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.speak = request.speak
        self.audio_id = transcripts.new_id() if self.speak else None

    # -- whole ------------------------------------------------------------------------------------
    async def whole(self, pieces: AsyncIterator) -> ChatCompletion:
        texts, waves, rate, end = [], [], None, None
        async for piece in pieces:
            if isinstance(piece, TextPiece):
                texts.append(piece.text)
            elif isinstance(piece, AudioPiece):
                waves.append(piece.wav)
                rate = piece.sample_rate
            elif isinstance(piece, TurnEnd):
                end = piece
        text = "".join(texts)
        audio = None
        if self.speak:
            wav = np.concatenate(waves) if waves else np.zeros(0, np.float32)
            data = encode_audio(wav, rate or 24_000, self.request.audio.format)
            expires = self.transcripts.put(self.audio_id, text)
            audio = AudioOut(id=self.audio_id, data=base64.b64encode(data).decode("ascii"), expires_at=expires,
                             transcript=text)
        message = ResponseMessage(content=None if self.speak else text, audio=audio)
        return ChatCompletion(id=self.id, created=self.created, model=self.model_name,
                              choices=[Choice(message=message, finish_reason=end.finish_reason if end else "stop")],
                              usage=_usage(end) if end else None)

    # -- streamed ---------------------------------------------------------------------------------
    def _event(self, delta: Delta | None, finish: str | None = None, usage: Usage | None = None) -> str:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        chunk = ChatCompletionChunk(id=self.id, created=self.created, model=self.model_name, choices=choices,
                                    usage=usage).model_dump()
        if delta is not None:  # deltas carry only the fields they set, as OpenAI's do
            chunk["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        if usage is None:
            chunk.pop("usage")
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    def _audio_delta(self, **fields) -> Delta:
        return Delta(audio=DeltaAudio(id=self.audio_id, **fields))

    async def stream(self, first, pieces: AsyncIterator) -> AsyncIterator[str]:
        """SSE lines for the piece `first` (already received) and the rest of `pieces`."""
        yield self._event(Delta(role="assistant") if self.speak else Delta(role="assistant", content=""))
        pcm, texts = None, []
        try:
            piece = first
            while True:
                if isinstance(piece, TextPiece):
                    texts.append(piece.text)
                    yield self._event(self._audio_delta(transcript=piece.text) if self.speak
                                      else Delta(content=piece.text))
                elif isinstance(piece, AudioPiece):
                    pcm = pcm or Pcm16Stream(piece.sample_rate)
                    yield self._event(self._audio_delta(data=base64.b64encode(pcm.push(piece.wav)).decode("ascii")))
                elif isinstance(piece, TurnEnd):
                    for line in self._finish(piece, pcm, "".join(texts)):
                        yield line
                    return
                piece = await anext(pieces)
        except StopAsyncIteration:
            log.error("engine stream ended without a TurnEnd")
            yield f"data: {json.dumps(as_api_error(RuntimeError('stream ended early')).body())}\n\n"
        except Exception as err:  # noqa: BLE001 - the status line is sent: report in-band
            yield f"data: {json.dumps(as_api_error(err).body())}\n\n"

    def _finish(self, end: TurnEnd, pcm: Pcm16Stream | None, text: str):
        if self.speak:
            tail = pcm.push(np.zeros(0, np.float32), last=True) if pcm is not None else b""
            if tail:
                yield self._event(self._audio_delta(data=base64.b64encode(tail).decode("ascii")))
            yield self._event(self._audio_delta(expires_at=self.transcripts.put(self.audio_id, text)))
        yield self._event(Delta(), finish=end.finish_reason)
        options = self.request.stream_options
        if options is not None and options.include_usage:
            yield self._event(None, usage=_usage(end))
        yield "data: [DONE]\n\n"
