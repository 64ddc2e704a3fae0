"""Inputs processed one conversation at a time join into what processing them together gives."""

import pytest
import torch

from nexus_o.processing.batching import join_rows
from tests.conftest import tone


def _conversations(image):
    return [
        {"messages": [{"role": "user", "content": "<audio>say it"}], "audios": [tone(1.3)]},
        {"messages": [{"role": "user", "content": "<image>what is it? a longer question here"}], "images": [image]},
        {"messages": [{"role": "user", "content": "<audio><audio>both"}], "audios": [tone(0.4), tone(31.0)]},
        {"messages": [{"role": "user", "content": "hi"}]},
    ]


def test_joined_rows_equal_processing_together(tiny, image):
    _, processor = tiny
    conversations = _conversations(image)
    together = processor.apply_chat_template(conversations, add_generation_prompt=True)
    alone = [processor.apply_chat_template([c], add_generation_prompt=True) for c in conversations]
    joined = join_rows(alone, processor.tokenizer.pad_token_id)
    assert set(joined) == set(together)
    for key in together:
        assert torch.equal(joined[key], together[key]), key
    assert joined["audio_clip_ids"].max() == 2  # three clips over two rows, numbered across the batch


def test_join_names_what_it_cannot_join(tiny):
    _, processor = tiny
    one = processor.apply_chat_template([{"messages": [{"role": "user", "content": "hi"}]}], add_generation_prompt=True)
    with pytest.raises(ValueError, match=r"inputs 1: cannot join key\(s\) \['labels'\]"):
        join_rows([one, {**one, "labels": one["input_ids"]}], 0)
    with pytest.raises(ValueError, match="inputs 0: expected input_ids of one row"):
        join_rows([{k: torch.cat([v, v]) for k, v in one.items()}], 0)
