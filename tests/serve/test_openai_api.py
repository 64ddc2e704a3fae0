"""The live server through the official `openai` client: text, speech, streaming, media, concurrency."""

from __future__ import annotations

import base64
import io
import struct
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import soundfile as sf

from nexus_o.serve.app import create_app
from nexus_o.serve.server import BackgroundServer
from nexus_o.serve.settings import ServeSettings
from tests.serve.conftest import mp4_bytes, png_data_url, wav_b64

MODEL = "tiny"


@pytest.fixture(scope="module")
def server(speaking):
    settings = ServeSettings(model_name=MODEL, max_tokens=12, max_speech_seconds=0.5, max_queue=64)
    with BackgroundServer(create_app(speaking, settings)) as live:
        yield live, speaking


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[0].url + "/v1", api_key="unused", max_retries=0, timeout=60)


def ask(text="Hello?"):
    return [{"role": "user", "content": text}]


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == [MODEL]
    health = httpx.get(server[0].url + "/health").json()
    assert health["status"] == "ok" and health["speech"] is True and health["voices"] == ["default"]


def test_text_reply(client):
    reply = client.chat.completions.create(model=MODEL, messages=ask(), max_tokens=6)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert isinstance(choice.message.content, str) and choice.message.audio is None
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 0 and 0 < reply.usage.completion_tokens <= 6


def test_audio_reply_is_a_wav_at_the_codec_rate(server, client):
    _, omni = server
    reply = client.chat.completions.create(model=MODEL, messages=ask(), modalities=["text", "audio"],
                                           audio={"voice": "default", "format": "wav"})
    message = reply.choices[0].message
    assert message.content is None and message.audio.id.startswith("audio_") and message.audio.expires_at > 0
    data = base64.b64decode(message.audio.data)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[24:28])[0] == omni.codec.sample_rate
    wav, rate = sf.read(io.BytesIO(data))
    assert rate == omni.codec.sample_rate and wav.size > 0
    # a later turn may name the reply by its audio id
    follow = client.chat.completions.create(model=MODEL, messages=ask() + [
        {"role": "assistant", "audio": {"id": message.audio.id}}, {"role": "user", "content": "and?"}])
    assert follow.choices[0].message.content is not None


def test_stream_with_audio_deltas(client):
    stream = client.chat.completions.create(model=MODEL, messages=ask(), modalities=["text", "audio"],
                                            audio={"voice": "default", "format": "pcm16"}, stream=True,
                                            stream_options={"include_usage": True})
    transcript, pcm, ids, finish, usage, expires = "", b"", set(), None, None, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            audio = choice.delta.audio
            if audio is not None:
                ids.add(audio.id)
                transcript += audio.transcript or ""
                pcm += base64.b64decode(audio.data) if audio.data else b""
                expires = audio.expires_at or expires
            finish = choice.finish_reason or finish
    assert len(ids) == 1 and transcript and len(pcm) > 0 and len(pcm) % 2 == 0
    assert finish in ("stop", "length") and expires is not None and usage.total_tokens > 0


def test_stream_text_only(client):
    chunks = list(client.chat.completions.create(model=MODEL, messages=ask(), stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant" and text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_image_audio_video_and_system_message(client):
    video = base64.b64encode(mp4_bytes()).decode()
    content = [{"type": "text", "text": "What do you see and hear?"},
               {"type": "image_url", "image_url": {"url": png_data_url()}},
               {"type": "input_audio", "input_audio": {"data": wav_b64(0.5), "format": "wav"}},
               {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + video}}]
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "developer", "content": "Be brief."},
                                                                  {"role": "user", "content": content}])
    assert reply.usage.prompt_tokens > 20  # image, audio and video placeholders were expanded


def test_fifty_requests_at_eight_concurrent(client):
    def one(i):
        return client.chat.completions.create(model=MODEL, messages=ask(f"question {i}"), max_tokens=2)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(one, range(50)))
    assert len(replies) == 50 and len({r.id for r in replies}) == 50
    assert all(r.choices[0].message.content is not None for r in replies)


def test_stream_interleaves_audio_with_the_transcript(server, client, monkeypatch):
    """A reply longer than the decoder's look-ahead: the first audio delta comes before the last
    transcript delta (random weights: reply and speech lengths forced through the session)."""
    _, omni = server
    session = type(omni).session
    forced = {"min_reply_tokens": 12, "min_speech_frames": 24, "chunk_frames": 4}
    monkeypatch.setattr(type(omni), "session", lambda self, *a, **kw: session(self, *a, **{**kw, **forced}))
    stream = client.chat.completions.create(model=MODEL, messages=ask(), modalities=["text", "audio"], max_tokens=12,
                                            audio={"voice": "default", "format": "pcm16"}, stream=True)
    order = ""
    for chunk in stream:
        for choice in chunk.choices:
            audio = choice.delta.audio
            if audio is not None and audio.transcript:
                order += "t"
            elif audio is not None and audio.data:
                order += "a"
    assert "a" in order and order.index("a") < order.rindex("t"), order


def test_text_requests_that_arrive_together_decode_as_one_batch(server, client, monkeypatch):
    """Four text requests wait while a spoken reply holds the model, then run as one batch, each
    getting the reply it gets alone (through the one-at-a-time path)."""
    import threading
    import time

    from nexus_o.serve.engine import ChatEngine

    questions = ["tell me about cats", "the sea at night?", "x", "numbers, letters and more numbers"]
    alone = [client.chat.completions.create(model=MODEL, messages=ask(q), max_tokens=8) for q in questions]
    gate, sizes = threading.Event(), []
    run, run_batch = ChatEngine.run, ChatEngine.run_batch

    def held_run(self, turn, cancel=None):
        if turn.speak:
            gate.wait(30)
        yield from run(self, turn, cancel)

    def counted_batch(self, turns, cancels):
        sizes.append(len(turns))
        yield from run_batch(self, turns, cancels)

    monkeypatch.setattr(ChatEngine, "run", held_run)
    monkeypatch.setattr(ChatEngine, "run_batch", counted_batch)
    with ThreadPoolExecutor(5) as pool:
        spoken = pool.submit(client.chat.completions.create, model=MODEL, messages=ask(),
                             modalities=["text", "audio"], audio={"voice": "default", "format": "wav"})
        time.sleep(0.5)  # the spoken reply holds the model
        texts = [pool.submit(client.chat.completions.create, model=MODEL, messages=ask(q), max_tokens=8)
                 for q in questions]
        for _ in range(100):
            if httpx.get(server[0].url + "/health").json()["queue"]["waiting"] == len(questions):
                break
            time.sleep(0.05)
        gate.set()
        together = [t.result() for t in texts]
        assert spoken.result().choices[0].message.audio is not None
    assert sizes == [len(questions)]
    for one, batched in zip(alone, together):
        assert batched.choices[0].message.content == one.choices[0].message.content
        assert batched.choices[0].finish_reason == one.choices[0].finish_reason
        assert batched.usage.completion_tokens == one.usage.completion_tokens
