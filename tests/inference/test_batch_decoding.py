"""Prompts decoded together (`ReplyDecoder.batch_steps`) give each row the reply it gets alone."""

import pytest
import torch

from nexus_o.inference.cancel import CancelToken
from nexus_o.inference.reply_steps import ReplyDecoder
from nexus_o.inference.text import generate_text
from nexus_o.processing.batching import join_rows
from tests.conftest import tone
from tests.serve.conftest import png_data_url, speaking_tiny

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def omni():
    torch.set_num_threads(1)
    return speaking_tiny()


def _prompts(omni, media: bool = True):
    """Three prompts of different lengths; media: one has an image (transformers then numbers
    every row's positions itself, `get_rope_index`), one audio; else text only."""
    chat = omni.session(max_new_tokens=12)
    if not media:
        return [chat.prepare([{"role": "user", "content": text}]).inputs
                for text in ("count to ten, slowly and with care", "x", "numbers, letters and more numbers")]
    conversations = [
        {"messages": [{"role": "user", "content": "count to ten, slowly and with care"}]},
        {"messages": [{"role": "user", "content": [{"type": "image", "image": png_data_url(56, 56)},
                                                   {"type": "text", "text": "what is it"}]}]},
        {"messages": [{"role": "user", "content": "<audio>hi"}], "audios": [tone(1.2)]},
    ]
    return [chat.prepare(c).inputs for c in conversations]


def _alone(decoder, inputs, budget, **options):
    return [(s.token, s.last, s.empty) for s in decoder.steps(inputs, budget, **options)]


@pytest.mark.parametrize("static,media", [(False, True), (True, True), (False, False), (True, False)])
def test_a_batch_decodes_each_row_as_it_decodes_alone(omni, static, media):
    eos = omni.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    decoder = ReplyDecoder(omni.model, eos, static_cache=static)
    prompts = _prompts(omni, media)
    budgets = [9, 4, 12]
    batch = join_rows(prompts, omni.processor.tokenizer.pad_token_id)
    assert not bool(batch["attention_mask"].all())  # the rows really are padded
    rows: list[list] = [[] for _ in prompts]
    conditions: list[list] = [[] for _ in prompts]
    for step in decoder.batch_steps(batch, budgets, min_new_tokens=3):
        for row, item in enumerate(step):
            if item is not None:
                rows[row].append((item.token, item.last, item.empty))
                conditions[row].append(item.condition)
    for row, (inputs, budget) in enumerate(zip(prompts, budgets)):
        alone = list(decoder.steps(inputs, budget, min_new_tokens=3))
        assert rows[row] == [(s.token, s.last, s.empty) for s in alone], f"row {row}"
        torch.testing.assert_close(torch.cat(conditions[row]), torch.cat([s.condition for s in alone]),
                                   atol=1e-5, rtol=1e-4)
    assert len(rows[1]) <= 4 and rows[1][-1][1]  # the budget of 4 ends row 1


def test_a_cancelled_row_stops_and_the_others_go_on(omni):
    eos = omni.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    decoder = ReplyDecoder(omni.model, eos)
    prompts = _prompts(omni)[:2]
    batch = join_rows(prompts, omni.processor.tokenizer.pad_token_id)
    tokens = [CancelToken(), CancelToken()]
    seen = [0, 0]
    for i, step in enumerate(decoder.batch_steps(batch, 10, row_cancels=tokens, min_new_tokens=10, conditions=False)):
        for row, item in enumerate(step):
            seen[row] += item is not None
        if i == 2:
            tokens[0].cancel("client left")
    assert seen == [3, 10]


def test_generate_text_batches_equal_single_replies(omni):
    """generate_text on a list (transformers' batched generate on CPU) agrees with one at a time."""
    model, processor = omni.model, omni.processor
    conversations = [[{"role": "user", "content": "count to ten"}], [{"role": "user", "content": "hello there you"}]]
    together = generate_text(model, processor, conversations, max_new_tokens=6, min_new_tokens=6)
    alone = [generate_text(model, processor, c, max_new_tokens=6, min_new_tokens=6)[0] for c in conversations]
    assert together == alone


@pytest.mark.parametrize("rows", [1, 2])
def test_the_decode_step_compiles_as_one_graph(omni, rows):
    """`compile_step` compiles the step with fullgraph=True: dynamo must see one graph, no break,
    with the static cache, with and without a mask (the batch's padding)."""
    from transformers import StaticCache

    model = omni.model
    decoder = ReplyDecoder(model, 0, static_cache=True)
    cache = StaticCache(config=model.config.vl_config.text_config, max_cache_len=512)
    prompts = _prompts(omni, media=False)[:rows]
    batch = join_rows(prompts, omni.processor.tokenizer.pad_token_id)
    mask = None if rows == 1 else torch.ones(rows, 512, dtype=torch.long)
    with torch.inference_mode():
        model.vl.model.rope_deltas = None
        out = model(**batch, cache=cache, use_cache=True, logits_to_keep=1)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        position = torch.full((3, rows, 1), batch["input_ids"].shape[1])
        explained = torch._dynamo.explain(decoder._forward_step)(token, position, cache, mask)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
