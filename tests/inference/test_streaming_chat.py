"""Speaking while writing: audio chunks interleave with the text, a text-then-speech decoder waits
for the text, a whole reply equals the stream, a cancel stops the speech at the next step, and
the conditions the chat speaks from are those stage 3 trains on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from nexus_o.bundle.omni import OmniModel
from nexus_o.inference.cancel import Cancelled, CancelToken
from nexus_o.inference.reply_steps import ReplyDecoder
from tests.serve.conftest import speaking_tiny

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
ASK = [{"role": "user", "content": "count to ten"}]
REPLY_TOKENS = 24


@pytest.fixture(scope="module")
def omni():
    torch.set_num_threads(1)
    return speaking_tiny()


def session(omni, **options):
    # Random weights: force a reply of REPLY_TOKENS tokens and speech of at least 3 chunks.
    options = {"max_new_tokens": REPLY_TOKENS, "min_reply_tokens": REPLY_TOKENS, "min_speech_frames": 48,
               "chunk_frames": 8, **options}
    return omni.session(**options)


def kinds(chunks) -> str:
    return "".join("t" if c.text is not None else "a" for c in chunks)


def test_audio_arrives_before_the_last_text_piece(omni):
    assert omni.model.speech_decoder.lookahead == 3  # the tiny preset streams
    chunks = list(session(omni).chat(ASK, modalities=["text", "audio"], stream=True))
    order = kinds(chunks)
    assert "a" in order and order.index("a") < order.rindex("t"), order
    text_pieces = order.count("t")
    assert text_pieces >= 3


def test_a_text_then_speech_decoder_waits_for_the_whole_text(omni):
    decoder = omni.model.speech_decoder
    saved = decoder.lookahead, decoder.text_end
    decoder.lookahead, decoder.text_end = None, None  # the paper's mode, same weights otherwise
    try:
        order = kinds(session(omni).chat(ASK, modalities=["text", "audio"], stream=True))
    finally:
        decoder.lookahead, decoder.text_end = saved
    assert "a" in order and order.index("a") > order.rindex("t"), order


def test_the_whole_reply_equals_the_stream(omni):
    chunks = list(session(omni).chat(ASK, modalities=["text", "audio"], stream=True))
    whole = session(omni).chat(ASK, modalities=["text", "audio"])
    assert whole.text == "".join(c.text for c in chunks if c.text is not None).strip()
    streamed = np.concatenate([c.audio for c in chunks if c.audio is not None])
    assert whole.codes.shape[1] >= 48 and streamed.shape == whole.audio.shape
    np.testing.assert_allclose(streamed, whole.audio, atol=1e-4)


def test_cancel_stops_the_speech_at_the_next_step(omni):
    cancel = CancelToken()
    stream = session(omni, min_speech_frames=2000, max_speech_seconds=1000).chat(
        ASK, modalities=["text", "audio"], stream=True, cancel=cancel)
    audio = 0
    with pytest.raises(Cancelled):
        for chunk in stream:
            if chunk.audio is not None:
                audio += 1
                if audio == 2:
                    cancel.cancel("client left")
    assert audio == 2


def test_streamed_conditions_are_the_trained_ones_in_a_multi_turn_conversation(omni):
    chat = session(omni)
    conversation = {"messages": ASK + [{"role": "assistant", "content": "one two"},
                                       {"role": "user", "content": "go on"}]}
    prompt = chat.prepare(conversation)
    eos = omni.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    steps = list(ReplyDecoder(omni.model, eos).steps(prompt.inputs, 10))
    ids = [s.token for s in steps]
    text = omni.processor.tokenizer.decode(ids, skip_special_tokens=True)
    # The seed-0 reply survives re-tokenisation, so both sides speak the same tokens.
    assert omni.processor.tokenizer(text, add_special_tokens=False)["input_ids"] == ids
    states, mask = chat.reply_states(conversation, text)
    torch.testing.assert_close(torch.cat([s.condition for s in steps]), states[0][mask[0]], atol=1e-5, rtol=1e-4)


def test_reply_decoder_matches_transformers_generate_with_an_image(omni):
    from tests.serve.conftest import png_data_url
    chat = session(omni)
    prompt = chat.prepare({"messages": [{"role": "user", "content": [
        {"type": "image", "image": png_data_url(56, 56)}, {"type": "text", "text": "what is it"}]}]})
    eos = omni.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for static in (False, True):
        ids = [s.token for s in ReplyDecoder(omni.model, eos, static_cache=static).steps(prompt.inputs, 8,
                                                                                           conditions=False)]
        reference = omni.model.generate(**prompt.inputs, max_new_tokens=8, do_sample=False, eos_token_id=eos,
                                        pad_token_id=omni.processor.tokenizer.pad_token_id)
        expected = reference[0, prompt.tokens:].tolist()
        assert ids == [t for t in expected if t != eos][:len(ids)] and len(ids) >= min(8, len(expected)) - 1
