"""Streaming speech: training sees at every step exactly what generation sees.

Generation runs on text that arrives token by token (as from the LLM) and records its logits;
the teacher-forced forward on the codes it produced must give the same logits. A step must not
depend on any token the schedule does not show it.
"""

import pytest
import torch

from nexus_o.models.sampling import SamplingConfig
from nexus_o.models.speech_decoder import SpeechDecoder
from nexus_o.models.speech_schedule import interleave_slots, visible_tokens
from tests.models.test_speech_decoder import ENTRIES, K, LLM, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
FRAMES = 10


def decoder_for(alignment: str, streaming: bool, lookahead: int = 2) -> SpeechDecoder:
    torch.manual_seed(0)
    decoder = SpeechDecoder.from_config(tiny_config(alignment=alignment, streaming=streaming, lookahead=lookahead,
                                                    steps_per_token=2)).eval()
    if decoder.text_end is not None:
        torch.nn.init.normal_(decoder.text_end)  # trained weights are not zero
    return decoder


def replies(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2, 6, LLM, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    return hidden, mask


def generate_streamed(decoder, hidden, mask, token_by_token: bool):
    """Greedy generation of FRAMES frames; text fed one token at a time whenever the decoder waits.
    Returns (codes [B, K, T], logits [B, K, S, C] per step, pointer [B, S], tokens known at step 0)."""
    b = hidden.shape[0]
    gen = decoder.start_generation(b, max_tokens=hidden.shape[1], max_frames=FRAMES, min_frames=FRAMES,
                                   sampling=SamplingConfig(greedy=True))
    fed = [0] * b
    columns, logits, pointers, known_at_start = [], [], [], None
    with torch.inference_mode():
        if not token_by_token:
            gen.add_all(hidden, mask)
        while not gen.exhausted:
            while not gen.ready():
                for i in range(b):
                    if gen.ended[i]:
                        continue
                    gen.add_text(i, hidden[i, fed[i]:fed[i] + 1])
                    fed[i] += 1
                    if fed[i] == int(mask[i].sum()):  # the LLM drew the end with this token's state
                        gen.end_text(i)
            if known_at_start is None:
                known_at_start = list(gen.known)
            pointers.append(gen.pointer.clone() if gen.pointer is not None else None)
            column, _ = gen.step()
            columns.append(column)
            logits.append(gen.logits)
    delayed = torch.stack(columns, dim=2)
    from nexus_o.models.speech_decoder import undelay
    codes = undelay(delayed, gen.end_frames, decoder.vocab.pad_id)[..., :FRAMES]
    pointer = torch.stack(pointers, dim=1) if pointers[0] is not None else None
    return codes, torch.stack(logits, dim=2), pointer, known_at_start


@pytest.mark.parametrize("alignment", ["prefix", "stepwise", "pointer"])
@pytest.mark.parametrize("streaming", [True, False])
def test_teacher_forced_logits_equal_generated_logits(alignment, streaming):
    decoder = decoder_for(alignment, streaming)
    hidden, mask = replies()
    codes, gen_logits, pointer, known = generate_streamed(decoder, hidden, mask, token_by_token=True)
    if streaming:  # the first step ran with the look-ahead only, not the whole text
        assert known[0] < int(mask[0].sum())
    else:
        assert known == mask.sum(dim=1).tolist()
    index = pointer[:, :FRAMES] if pointer is not None else None
    with torch.no_grad():
        out = decoder(hidden, mask, codes, torch.full((2,), FRAMES), token_index=index)
    steps = FRAMES if alignment == "pointer" else gen_logits.shape[2]  # the pointer's tail differs by design
    forced, generated = out.logits[:, :, :steps], gen_logits[:, :, :steps]
    usable = torch.isfinite(generated)  # "pointer" forbids end before the last token
    torch.testing.assert_close(forced[usable], generated[usable], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("alignment", ["prefix", "pointer"])
def test_a_step_never_reads_past_the_lookahead(alignment):
    decoder = decoder_for(alignment, streaming=True, lookahead=2)
    hidden, mask = replies()
    g = torch.Generator().manual_seed(3)
    codes = torch.randint(0, ENTRIES, (2, K, FRAMES), generator=g)
    lengths = torch.full((2,), FRAMES)
    index = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 3, 4, 5], [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]])
    with torch.no_grad():
        base = decoder(hidden, mask, codes, lengths, token_index=index).logits
        changed = hidden.clone()
        changed[:, 4:] += 5.0  # tokens 4 and 5
        after = decoder(changed, mask, codes, lengths, token_index=index).logits
    counts = mask.sum(dim=1)
    progress = index if alignment == "pointer" else torch.arange(FRAMES)[None].expand(2, -1) // 2
    visible = visible_tokens(progress, counts, 2)
    for b in range(2):
        blind = int((visible[b] <= 4).sum())  # the steps that see tokens 0..3 only
        if counts[b] > 4:
            assert blind >= 1
            torch.testing.assert_close(base[b, :, :blind], after[b, :, :blind])
            assert not torch.allclose(base[b, :, blind:], after[b, :, blind:])


def test_interleaved_slots_fill_the_sequence_once():
    visible = torch.tensor([[2, 2, 3, 5, 5], [1, 3, 3, 3, 3]])
    counts = torch.tensor([5, 3])
    text, steps = interleave_slots(visible, counts, 6)
    assert text[0].tolist() == [0, 1, 4, 6, 7, 10] and steps[0].tolist() == [2, 3, 5, 8, 9]
    assert text[1, :3].tolist() == [0, 2, 3] and steps[1].tolist() == [1, 4, 5, 6, 7]
    assert text[1, 3:].min() >= 8  # padding after the sample's 8 slots


def test_text_then_speech_is_the_prefix_layout():
    visible = visible_tokens(torch.zeros(1, 4, dtype=torch.long), torch.tensor([3]), None)
    text, steps = interleave_slots(visible, torch.tensor([3]), 3)
    assert text[0].tolist() == [0, 1, 2] and steps[0].tolist() == [3, 4, 5, 6]


def test_lookahead_is_checked():
    with pytest.raises(ValueError, match="lookahead"):
        tiny_config(alignment="pointer", streaming=True, lookahead=1)
