"""Hostile input against a live tiny server: refused at once in OpenAI's error shape, never a 5xx,
prompts checked against the context before any work, strict types, and no work outliving its request."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import struct
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from nexus_o.serve.app import create_app
from nexus_o.serve.fuzz import openai_shaped
from nexus_o.serve.server import BackgroundServer
from nexus_o.serve.settings import ServeSettings
from tests.serve.test_limits import assert_error

MODEL = "tiny"
LONG = 3000  # reply tokens: the random-weight tiny model never says "end", so this runs for many seconds


@pytest.fixture(scope="module")
def server(speaking):
    settings = ServeSettings(model_name=MODEL, max_tokens=LONG, max_speech_seconds=0.5, max_queue=4,
                             request_timeout=30)
    with BackgroundServer(create_app(speaking, settings)) as live:
        yield live


def post(url: str, body, timeout: float = 60, **kwargs) -> httpx.Response:
    """POST a body as a client would send it: JSON with non-ASCII escaped (so lone surrogates travel)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode("ascii")
    return httpx.post(url + "/v1/chat/completions", content=data, headers={"Content-Type": "application/json"},
                      timeout=timeout, **kwargs)


def timed_post(url: str, body) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    response = post(url, body)
    return response, time.perf_counter() - start


def user(content, **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 2, **extra}


def wait_idle(url: str, within: float) -> float:
    """Seconds until the model worker is idle (fails after `within`)."""
    start = time.perf_counter()
    while time.perf_counter() - start < within:
        if not httpx.get(url + "/health").json()["queue"]["busy"]:
            return time.perf_counter() - start
        time.sleep(0.02)
    raise AssertionError(f"the model worker was still busy {within} s later")


def wait_busy(url: str) -> None:
    for _ in range(1000):
        if httpx.get(url + "/health").json()["queue"]["busy"]:
            return
        time.sleep(0.01)
    raise AssertionError("the model never started")


# -- the "done when" -------------------------------------------------------------------------
def test_megabyte_prompt_and_lone_surrogates_are_refused_at_once_then_a_valid_request_succeeds(server):
    megabyte = "hello " * 174_763
    response, took = timed_post(server.url, user(megabyte))
    error = assert_error(response, 400, "context_length_exceeded", "messages")
    assert took < 1.0, f"the 1 MB prompt took {took:.2f} s to refuse"
    numbers = [int(n) for n in re.findall(r"\d+", error["message"])]
    assert 4095 in numbers and any(n > 4095 for n in numbers), error["message"]  # both sides named

    for body, param in [(user("\ud800"), "messages[0].content"),
                        (user([{"type": "text", "text": "ok"}, {"type": "text", "text": "a\ud800b"}]),
                         "messages[0].content[1].text"),
                        (user("x\udfff", stream=True), "messages[0].content")]:
        response, took = timed_post(server.url, body)
        assert_error(response, 400, "invalid_text", param)
        assert took < 1.0, f"a lone surrogate took {took:.2f} s to refuse"

    response, took = timed_post(server.url, user("Hello!"))
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] is not None
    assert took < 2.0, f"the valid request after them took {took:.2f} s"


# -- length limits -------------------------------------------------------------------------------------
def test_prompt_and_reply_budget_are_checked_against_the_context_with_both_numbers(server, speaking):
    processor = speaking.processor
    text = "circle " * 5000  # under the character bound, over the context: the exact count refuses it
    response = post(server.url, user(text))
    error = assert_error(response, 400, "context_length_exceeded", "messages")
    tokens = processor.apply_chat_template([{"role": "user", "content": text}])["input_ids"].shape[1]
    assert f"the prompt has {tokens} tokens, over the limit of 4095" in error["message"]

    fits = "circle " * 2000
    prompt = processor.apply_chat_template([{"role": "user", "content": fits}])["input_ids"].shape[1]
    error = assert_error(post(server.url, user(fits, max_tokens=LONG)), 400, "context_length_exceeded", "max_tokens")
    assert f"max_tokens={LONG} does not fit: the prompt takes {prompt} of this model's 4096 positions, leaving " \
           f"{4096 - prompt}" in error["message"]


def test_max_prompt_tokens_setting(speaking):
    settings = ServeSettings(model_name=MODEL, max_tokens=4, max_prompt_tokens=40)
    with BackgroundServer(create_app(speaking, settings)) as live:
        error = assert_error(post(live.url, user("circle " * 40)), 400, "context_length_exceeded", "messages")
        assert "over the limit of 40: the configured max_prompt_tokens is 40" in error["message"]
        assert post(live.url, user("circle")).status_code == 200


# -- strict schema -------------------------------------------------------------------------------------
def _wav(samples, rate=16000, subtype="PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(samples, np.float32), rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _lying_wav() -> bytes:
    data = bytearray(_wav(np.zeros(1600)))
    at = data.find(b"data")
    data[at + 4:at + 8] = struct.pack("<I", 0xFFFFFFF0)
    return bytes(data)


def _audio(data: bytes, fmt: str = "wav") -> list:
    return [{"type": "text", "text": "what is said?"},
            {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}]


TONE = 0.3 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 220)
AUDIO_PARAM = "messages[0].content[1].input_audio.data"


@pytest.mark.parametrize("body, code, param", [
    (user("hi", max_tokens=True), "invalid_value", "max_tokens"),
    (user("hi", n=True), "invalid_value", "n"),
    (user("hi", temperature=True), "invalid_value", "temperature"),
    (user("hi", max_completion_tokens=False), "invalid_value", "max_completion_tokens"),
    (user("hi", stream=True, stream_options={"include_usage": "yes"}), "invalid_value", "stream_options.include_usage"),
    (user("hi", stream="true"), "invalid_value", "stream"),
    (user("hi", max_tokens="2"), "invalid_value", "max_tokens"),
    (user(""), "empty_content", "messages[0].content"),
    (user([]), "empty_array", "messages[0].content"),
    (user("hi", modalities=[]), "empty_array", "modalities"),
    (user(_audio(_wav([0.1]))), "audio_too_short", AUDIO_PARAM),
    (user(_audio(b"\x10\x00", "pcm16")), "audio_too_short", AUDIO_PARAM),
    (user(_audio(_lying_wav())), "invalid_audio", AUDIO_PARAM),
    (user(_audio(_wav(TONE, 8000, "ALAW"))), "unsupported_audio_encoding", AUDIO_PARAM),
    (user(_audio(_wav(TONE, 8000, "ULAW"))), "unsupported_audio_encoding", AUDIO_PARAM),
    (user(_audio(_wav(TONE, 8000, "IMA_ADPCM"))), "unsupported_audio_encoding", AUDIO_PARAM),
])
def test_strict_schema_and_audio(server, body, code, param):
    assert_error(post(server.url, body), 400, code, param)


def test_what_the_strict_schema_still_accepts(server):
    assert post(server.url, user("hi", temperature=1, top_p=1, seed=3)).status_code == 200  # ints for floats
    assert post(server.url, user(_audio(_wav(TONE, 8000)))).status_code == 200  # short, but a whole audio token
    echoed = {"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"},
                                                            {"role": "assistant", "content": ""},
                                                            {"role": "user", "content": "again"}]}
    assert post(server.url, echoed).status_code == 200  # an empty assistant reply may be sent back


# -- arbitrary text in every text field -----------------------------------------------------------------
TEXT = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates and control characters included
TEXT_FIELDS = [
    lambda b, t: b["messages"][0].update(content=t),
    lambda b, t: b["messages"][0].update(content=[{"type": "text", "text": t}]),
    lambda b, t: b["messages"].insert(0, {"role": "system", "content": t}),
    lambda b, t: b["messages"].insert(0, {"role": "assistant", "content": [{"type": "refusal", "refusal": t}]}),
    lambda b, t: b["messages"][0].update(name=t),
    lambda b, t: b.update(model=t),
    lambda b, t: b.update(user=t),
    lambda b, t: b.update(stop=[t]),
    lambda b, t: b.update(metadata={t: t}),
    lambda b, t: b.update(modalities=["text", "audio"], audio={"voice": t, "format": "wav"}),
    lambda b, t: b.update({t: 1}),
    lambda b, t: b["messages"][0].update(role=t),
]


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, where=st.integers(0, len(TEXT_FIELDS) - 1), stream=st.booleans())
def test_any_unicode_in_any_text_field_is_a_200_or_an_openai_4xx(server, text, where, stream):
    body = user("hi", stream=stream)
    TEXT_FIELDS[where](body, text)
    response = post(server.url, body)
    assert response.status_code == 200 or (400 <= response.status_code < 500 and openai_shaped(response.content)), \
        (response.status_code, response.text[:300])


# -- work never outlives its request --------------------------------------------------------------------
def test_a_client_leaving_a_stream_frees_the_model_within_a_second(server):
    with httpx.stream("POST", server.url + "/v1/chat/completions", timeout=60,
                      json={**user("hi", stream=True), "max_tokens": LONG}) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        wait_busy(server.url)
    # the connection is closed: the model must stop at its next decoding step
    assert wait_idle(server.url, within=1.0) < 1.0


def test_a_client_leaving_a_whole_reply_frees_the_model_within_a_second(server):
    body = json.dumps({**user("hi"), "max_tokens": LONG}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        wait_busy(server.url)
    assert wait_idle(server.url, within=1.0) < 1.0


def test_a_timed_out_request_frees_the_model_within_a_second(speaking):
    settings = ServeSettings(model_name=MODEL, max_tokens=LONG, request_timeout=1.0)
    with BackgroundServer(create_app(speaking, settings)) as live:
        response, took = timed_post(live.url, {**user("hi"), "max_tokens": LONG})
        assert_error(response, 504, "timeout")
        assert took < 2.0
        assert wait_idle(live.url, within=1.0) < 1.0
        assert post(live.url, user("hi")).status_code == 200


def test_a_request_waiting_too_long_for_the_model_is_a_503(speaking):
    settings = ServeSettings(model_name=MODEL, max_tokens=LONG, max_queue_wait=0.5, request_timeout=30)
    with BackgroundServer(create_app(speaking, settings)) as live:
        def long_request():
            try:
                post(live.url, {**user("hi"), "max_tokens": LONG}, timeout=4)
            except httpx.TimeoutException:
                pass  # this client gives up; the server notices it left

        first = threading.Thread(target=long_request)
        first.start()
        wait_busy(live.url)
        response, took = timed_post(live.url, user("hi"))
        error = assert_error(response, 503, "queue_timeout")
        assert error["type"] == "server_error" and response.headers["Retry-After"] == "1" and 0.4 < took < 2.0
        first.join()
        assert wait_idle(live.url, within=1.0) < 1.0
