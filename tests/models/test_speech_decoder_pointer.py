"""The "pointer" alignment: the token being spoken is in every step's input, an advance head moves it."""

import pytest
import torch

from nexus_o.models.speech_decoder import SpeechDecoder
from tests.models.test_speech_decoder import (
    ENTRIES,
    GREEDY,
    K,
    batch,
    tiny_config,
    tiny_decoder,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def pointer_batch():
    """batch() with a token index per frame: sample 0 walks its 5 tokens, sample 1 its 3 (then padding)."""
    hidden, mask, codes, lengths = batch()
    index = torch.tensor([[0, 0, 1, 2, 3, 3, 4], [0, 1, 2, 2, 0, 0, 0]])
    return hidden, mask, codes, lengths, index


def test_advance_loss_is_part_of_the_loss_and_reaches_the_head():
    decoder = tiny_decoder("pointer")
    hidden, mask, codes, lengths, index = pointer_batch()
    out = decoder(hidden, mask, codes, lengths, token_index=index)
    assert out.advance_loss is not None and out.advance_loss > 0
    assert torch.allclose(out.loss, out.per_codebook_loss.mean() + out.advance_loss)
    out.loss.backward()
    assert decoder.advance_head.weight.grad.abs().sum() > 0 and decoder.lookahead_proj.weight.grad.abs().sum() > 0
    assert decoder.llm_proj.weight.grad.abs().sum() > 0


def test_the_index_decides_which_token_each_step_reads():
    """Changing which token frame 3 reads changes the loss; changing padded frames does not."""
    decoder = tiny_decoder("pointer")
    hidden, mask, codes, lengths, index = pointer_batch()
    base = decoder(hidden, mask, codes, lengths, token_index=index).per_codebook_loss
    padded = index.clone()
    padded[1, 4:] = 2  # past sample 1's 4 frames
    assert torch.allclose(decoder(hidden, mask, codes, lengths, token_index=padded).per_codebook_loss, base)
    moved = index.clone()
    moved[0, 3] = 3
    assert not torch.allclose(decoder(hidden, mask, codes, lengths, token_index=moved).per_codebook_loss, base)


def test_bad_token_index_is_a_clear_error():
    decoder = tiny_decoder("pointer")
    hidden, mask, codes, lengths, index = pointer_batch()
    with pytest.raises(ValueError, match="needs token_index"):
        decoder(hidden, mask, codes, lengths)
    with pytest.raises(ValueError, match=r"\[batch=2, frames=7\]"):
        decoder(hidden, mask, codes, lengths, token_index=index[:, :5])
    backwards = index.clone()
    backwards[0, 4] = 1
    with pytest.raises(ValueError, match="never go back"):
        decoder(hidden, mask, codes, lengths, token_index=backwards)
    beyond = index.clone()
    beyond[1, 2] = 3  # sample 1 has 3 valid tokens: 0..2
    with pytest.raises(ValueError, match="last valid text token"):
        decoder(hidden, mask, codes, lengths, token_index=beyond)


def test_cache_gives_the_same_codes():
    decoder = tiny_decoder("pointer")
    hidden, mask, _, _ = batch()
    cached = decoder.generate(hidden, mask, max_frames=24, sampling=GREEDY)
    full = decoder.generate(hidden, mask, max_frames=24, sampling=GREEDY)
    assert torch.equal(cached.codes, full.codes) and torch.equal(cached.lengths, full.lengths)


def test_no_end_before_the_pointer_reaches_the_last_token():
    """An advance head that never fires keeps a decoder that wants to stop at once going to max_frames."""
    decoder = tiny_decoder("pointer")
    hidden, mask, _, _ = batch()
    logits = decoder.code_logits

    def always_end(h):
        out = logits(h).clone()
        out[:, 0, :, decoder.vocab.end_id] = 1e4
        return out

    decoder.code_logits = always_end
    with torch.no_grad():
        decoder.advance_head.weight.zero_()
        decoder.advance_head.bias.fill_(-10.0)
    out = decoder.generate(hidden, mask, max_frames=12, sampling=GREEDY)
    assert out.lengths.tolist() == [12, 12]
    with torch.no_grad():
        decoder.advance_head.bias.fill_(10.0)  # moves every step: the end is allowed from the last token on
    out = decoder.generate(hidden, mask, max_frames=12, sampling=GREEDY)
    assert (out.lengths < 12).all()


def test_overfit_two_replies_with_their_word_timing():
    """Trained on two replies, greedy generation gives back their codes and lengths."""
    torch.manual_seed(0)
    decoder = SpeechDecoder.from_config(tiny_config(num_codebooks=3, max_steps=40, alignment="pointer"))
    hidden, mask, codes, _, index = pointer_batch()
    codes, lengths = codes[:, :3, :6], torch.tensor([6, 3])
    index = index[:, :6].clone()
    index[0, 5] = 4  # a target always ends on its last token
    opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        decoder(hidden, mask, codes, lengths, token_index=index).loss.backward()
        opt.step()
    out = decoder.eval().generate(hidden, mask, max_frames=20, sampling=GREEDY)
    assert out.lengths.tolist() == [6, 3]
    assert torch.equal(out.codes[0], codes[0]) and torch.equal(out.codes[1, :, :3], codes[1, :, :3])
    assert (out.codes < ENTRIES + 4).all() and out.codes.shape[1] == 3 != K


def test_each_step_also_reads_the_next_token_and_nothing_after_the_last():
    """A word split into tokens ("t" + "wo" vs "t" + "hree") differs from its first frame on."""
    from tests.models.test_speech_decoder import LLM

    decoder = tiny_decoder("pointer")
    two = torch.randn(1, 2, LLM)
    three = two.clone()
    three[0, 1] += 1.0  # same first token, another second token
    cond = decoder.condition(torch.cat([two, three]), None)
    first = decoder.pointer_condition(cond, torch.zeros(2, 1, dtype=torch.long))
    assert not torch.allclose(first[0], first[1])
    last = decoder.pointer_condition(cond, torch.ones(2, 1, dtype=torch.long))
    assert torch.allclose(last, cond.token(torch.ones(2, 1, dtype=torch.long)))
