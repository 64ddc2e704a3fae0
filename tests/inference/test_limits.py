"""Length limits before any model work: the bound is sound, the exact check names both numbers, and
`model.chat` / `generate_text` refuse with a ValueError before the model runs."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

from nexus_o.inference.limits import ContextLengthError, LengthLimits, max_token_chars
from nexus_o.inference.text import generate_text, prepare_inputs
from nexus_o.processing.tokenizer import build_tiny_tokenizer

TOKENIZER = build_tiny_tokenizer()


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=300))
def test_the_character_bound_never_exceeds_the_real_token_count(text):
    fewest = -(-len(text) // max_token_chars(TOKENIZER))
    assert fewest <= len(TOKENIZER(text, add_special_tokens=False)["input_ids"])


def test_bound_refuses_a_megabyte_in_milliseconds_and_names_the_numbers():
    limits = LengthLimits(context=4096)
    start = time.perf_counter()
    with pytest.raises(ContextLengthError) as info:
        limits.check_text("hello " * 174_763, TOKENIZER)
    assert time.perf_counter() - start < 0.1
    err = info.value
    assert err.field == "prompt" and not err.exact and err.tokens > 4095 and err.limit == 4095
    assert f"at least {err.tokens} tokens" in str(err) and "over the limit of 4095" in str(err)
    limits.check_text("hello " * 100, TOKENIZER)  # short text: no error, no work


def test_exact_check_and_reply_budget():
    limits = LengthLimits(context=100, max_prompt_tokens=60)
    assert limits.prompt_limit == 60 and LengthLimits(100).prompt_limit == 99
    limits.check(60, 40)
    with pytest.raises(ContextLengthError, match="the prompt has 61 tokens, over the limit of 60: the configured "
                                                 "max_prompt_tokens is 60"):
        limits.check(61, 1)
    with pytest.raises(ContextLengthError, match="max_new_tokens=41 does not fit: the prompt takes 60 of this "
                                                 "model's 100 positions, leaving 40") as info:
        limits.check(60, 41)
    assert info.value.field == "max_new_tokens"
    with pytest.raises(ContextLengthError, match="context of 100"):
        limits.check_sequence(101)
    with pytest.raises(ValueError, match="max_prompt_tokens=0"):
        LengthLimits(100, 0)


def test_chat_and_generate_text_refuse_before_the_model_runs(tiny, tiny_omni, monkeypatch):
    model, processor = tiny

    def no_model(*args, **kwargs):
        raise AssertionError("the model ran")

    monkeypatch.setattr(model, "generate", no_model)
    with pytest.raises(ValueError, match="the prompt has at least .* over the limit of 4095"):
        tiny_omni.chat([{"role": "user", "content": "x" * 100_000}])
    with pytest.raises(ValueError, match=r"the prompt has \d+ tokens, over the limit of 4095"):
        tiny_omni.chat([{"role": "user", "content": "circle " * 5000}])
    with pytest.raises(ValueError, match=r"messages\[0\].content\[1\].text cannot be tokenized: surrogates"):
        tiny_omni.chat([{"role": "user", "content": [{"type": "text", "text": "ok"}, {"type": "text", "text": "\ud800"}]}])
    with pytest.raises(ContextLengthError) as info:  # in a batch, the error names the conversation
        generate_text(model, processor, [[{"role": "user", "content": "hi"}],
                                         [{"role": "user", "content": "circle " * 5000}]], max_new_tokens=4)
    assert info.value.index == 1 and "conversation 1 of the batch" in str(info.value)
    batch = prepare_inputs(model, processor, [{"role": "user", "content": "hi"}], max_new_tokens=4)
    assert batch["input_ids"].shape[0] == 1
