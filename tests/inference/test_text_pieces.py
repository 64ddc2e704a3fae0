"""`TextPieces` hands out, token by token, exactly the text decoding the whole reply gives."""

import numpy as np
import pytest

from nexus_o.inference.chat import TextPieces

TEXTS = ["Three red squares, next to the blue circle.", "正方形是什么颜色？红色。", "emoji 🙂 and ü, é; 数字 7!",
         "  spaces   and\nnew lines\t.", "<|im_start|>assistant\nhi<|im_end|>"]


def _feed(tokenizer, ids):
    pieces = TextPieces(tokenizer)
    out = [pieces.push(i) for i in ids]
    return pieces, out


@pytest.mark.parametrize("text", TEXTS)
def test_pieces_join_to_the_whole_decode(tiny, text):
    tokenizer = tiny[1].tokenizer
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces, out = _feed(tokenizer, ids)
    whole = tokenizer.decode(ids, skip_special_tokens=True)
    assert "".join(out) == pieces.text == whole
    assert not any("\ufffd" in piece for piece in out)  # multi-byte characters are never split


def test_random_ids_give_the_whole_decode(tiny):
    tokenizer = tiny[1].tokenizer
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids = rng.integers(0, len(tokenizer), rng.integers(1, 60)).tolist()
        pieces, out = _feed(tokenizer, ids)
        whole = tokenizer.decode(ids, skip_special_tokens=True)
        if not whole.endswith("\ufffd"):  # else its last bytes are held back, as they should be
            assert "".join(out) == whole
