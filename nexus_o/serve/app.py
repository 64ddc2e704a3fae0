"""The OpenAI-compatible HTTP app: `create_app(omni, settings) -> FastAPI`.

Routes: `POST /v1/chat/completions` (whole or streamed replies, text and speech),
`GET /v1/models`, `GET /v1/models/{id}`, `GET /health`, and the web demo at `/demo`.
A request goes: body size check (before parsing) -> schema validation -> option, text and media
checks, media decoding and the prompt's length against the context (thread pool) -> a place in
the bounded model queue (`settings.max_queue_wait` at most) -> the reply, whole or as Server-Sent
Events, within `settings.request_timeout`. A request that ends early (timeout, client gone)
cancels its job, and the model stops at its next decoding step. See `errors.py` for the status
codes.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from nexus_o.serve.conversation import TranscriptStore, build_turn
from nexus_o.bundle.omni import OmniModel
from nexus_o.serve.engine import ChatEngine, TurnEnd
from nexus_o.serve.errors import ApiError, install_error_handlers
from nexus_o.serve.queue import Batchable, Job, ModelWorker, QueueFullError
from nexus_o.serve.replies import ReplyBuilder, as_api_error
from nexus_o.serve.demo import add_demo_routes
from nexus_o.serve.examples import DemoExample
from nexus_o.serve.schemas import ChatCompletionRequest, ModelCard, ModelList
from nexus_o.serve.settings import ServeSettings


class BodyLimitMiddleware:
    """Reads request bodies up front: over `max_bytes` -> 413 (from Content-Length when given,
    else as soon as the count passes it), slower than `read_timeout` s -> 408. Nothing is parsed
    before the body has passed."""

    def __init__(self, app, max_bytes: int, read_timeout: float):
        self.app, self.max_bytes, self.read_timeout = app, max_bytes, read_timeout

    def _too_large(self) -> JSONResponse:
        return ApiError(413, f"the request body exceeds this server's limit of {self.max_bytes} bytes",
                        code="request_too_large").response()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await ApiError(400, "invalid Content-Length header", code="invalid_header").response()(
                    scope, receive, send)
            if int(length) > self.max_bytes:
                return await self._too_large()(scope, receive, send)
        chunks, total = [], 0
        try:
            async with asyncio.timeout(self.read_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body = message.get("body", b"")
                    total += len(body)
                    if total > self.max_bytes:
                        return await self._too_large()(scope, receive, send)
                    chunks.append(body)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return await ApiError(408, f"the request body took longer than {self.read_timeout:g} s to arrive",
                                  code="request_timeout").response()(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _cancel_on_disconnect(request: Request, job: Job) -> None:
    """Cancel `job` when the client closes the connection (the body has been read by now, so the
    next ASGI message can only be the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.cancel("the client disconnected")
            return


def _text_batch(engine: ChatEngine):
    """`Batchable.run` for text turns: the engine's batch, each reply's stream ending with its `TurnEnd`."""
    def run(turns, tokens):
        for index, piece in engine.run_batch(turns, tokens):
            yield index, piece, isinstance(piece, TurnEnd)
    return run


def create_app(omni: OmniModel | None, settings: ServeSettings | None = None, *,
               engine: ChatEngine | None = None, demo: bool = True,
               examples: list[DemoExample] | None = None) -> FastAPI:
    """The server app for the bundle `omni` (model + processor; its codec, if any, enables audio).

    engine: a ready `ChatEngine` to use instead of one built from `omni` (which may then be None).
    demo: also serve the web demo page at /demo.
    examples: test examples the demo page offers (`serve.examples.load_examples`), if any.
    """
    settings = settings or ServeSettings()
    engine = engine or ChatEngine(omni, max_speech_seconds=settings.max_speech_seconds, max_batch=settings.max_batch)
    transcripts = TranscriptStore(settings.audio_ttl_seconds)
    worker: ModelWorker | None = None
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        nonlocal worker
        worker = ModelWorker(settings.max_queue, max_batch=settings.max_batch, batch_window=settings.batch_window)
        try:
            yield
        finally:
            worker.close()

    app = FastAPI(title="nexus-o", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings, app.state.engine = settings, engine
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, read_timeout=settings.body_read_timeout)

    def card() -> ModelCard:
        return ModelCard(id=settings.model_name, created=started)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": settings.model_name, "speech": engine.can_speak,
                "voices": list(engine.voices), "queue": {"waiting": worker.waiting, "busy": worker.busy,
                                                         "max_waiting": settings.max_queue}}

    @app.get("/v1/models")
    async def models() -> ModelList:
        return ModelList(data=[card()])

    @app.get("/v1/models/{model_id}")
    async def model_info(model_id: str) -> ModelCard:
        if model_id != settings.model_name:
            raise ApiError(404, f"the model {model_id!r} does not exist; this server has {settings.model_name!r}",
                           param="model", code="model_not_found")
        return card()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatCompletionRequest, http: Request):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.request_timeout
        if request.model != settings.model_name:
            raise ApiError(404, f"the model {request.model!r} does not exist; this server has "
                                f"{settings.model_name!r}", param="model", code="model_not_found")
        turn = await run_in_threadpool(build_turn, request, engine, settings, transcripts)
        try:
            # Text turns waiting together decode as one batch; a turn that speaks runs alone.
            batch = None if turn.speak else Batchable("text", turn, _text_batch(engine))
            job = worker.submit(lambda token: engine.run(turn, token), timeout=max(0.0, deadline - loop.time()),
                                batch=batch)
        except QueueFullError as err:
            raise ApiError(429, f"{err}; retry later", type="rate_limit_error", code="queue_full") from None
        reply = ReplyBuilder(request, settings.model_name, transcripts)
        pieces = job.items(deadline, start_by=loop.time() + settings.max_queue_wait)
        # Until the reply starts streaming (StreamingResponse then watches the connection itself),
        # a client that leaves cancels the job.
        watcher = asyncio.create_task(_cancel_on_disconnect(http, job))
        try:
            if not request.stream:
                return await reply.whole(pieces)
            first = await anext(pieces)  # errors before the first piece still get their own status
        except asyncio.CancelledError:  # the server is shutting down: free the model
            job.cancel("the server is shutting down")
            raise
        except Exception as err:
            job.cancel()
            raise as_api_error(err) from None
        finally:
            watcher.cancel()

        async def events():
            try:
                async for line in reply.stream(first, pieces):
                    yield line
            finally:  # the client may leave mid-stream: free the model at its next piece
                job.cancel()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    if demo:
        add_demo_routes(app, examples)
    return app
