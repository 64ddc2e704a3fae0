"""One cancellation mechanism: a CancelToken stops text generation and speech decoding at the next step."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from nexus_o.inference.cancel import CancelCriteria, Cancelled, CancelToken
from nexus_o.inference.speech_stream import stream_codes
from nexus_o.inference.text import generate_text
from nexus_o.models.speech_decoder import SpeechDecoder
from tests.models.test_speech_decoder import LLM, tiny_config


def test_token_deadline_parent_and_criteria():
    token = CancelToken()
    assert not token.cancelled and token.reason is None
    token.check()
    token.cancel("because")
    token.cancel("later reasons are ignored")
    assert token.cancelled and token.reason == "because"
    with pytest.raises(Cancelled, match="because"):
        token.check()
    assert CancelToken(deadline=time.monotonic() - 1).cancelled
    parent = CancelToken()
    child = CancelToken(parent=parent)
    child_only = CancelToken(parent=parent)
    child_only.cancel()
    assert not parent.cancelled and not child.cancelled  # a child's cancel does not reach its parent
    parent.cancel("client left")
    assert child.cancelled and child.reason == "client left"
    criteria = CancelCriteria(child)
    assert criteria(torch.zeros(3, 5, dtype=torch.long), torch.zeros(3, 7)).tolist() == [True] * 3


@pytest.fixture
def chat(tiny_omni, one_thread):
    return tiny_omni.session(max_new_tokens=3000)


def test_text_generation_stops_at_the_next_step(chat):
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        for _ in chat.chat([{"role": "user", "content": "hi"}], stream=True, cancel=token):
            pass
    assert time.perf_counter() - start < 1.3  # 3000 tokens would take many seconds
    token = CancelToken(deadline=time.monotonic() + 0.3)
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        generate_text(chat.model, chat.processor, [{"role": "user", "content": "hi"}], 3000, cancel=token)
    assert time.perf_counter() - start < 1.3


def test_closing_a_reply_stream_stops_the_model(chat):
    stream = chat.chat([{"role": "user", "content": "hi"}], stream=True)
    next(stream)
    start = time.perf_counter()
    stream.close()  # joins the generation thread, which stops at its next step
    assert time.perf_counter() - start < 1.0
    assert not [t for t in threading.enumerate() if t.name == "nexus-o-generate"]


def test_speech_decoding_stops_at_the_next_step():
    torch.manual_seed(0)
    decoder = SpeechDecoder.from_config(tiny_config(max_steps=4000)).eval()
    token, steps = CancelToken(), 0
    with pytest.raises(Cancelled):
        for _ in stream_codes(decoder, torch.randn(1, 5, LLM), chunk_frames=1, max_frames=3000, min_frames=3000,
                              cancel=token):
            steps += 1
            if steps == 3:
                token.cancel()
    assert steps == 3
