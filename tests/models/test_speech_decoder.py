"""The AR speech decoder on a tiny random model: loss masking, generation, cache, errors
(streaming: tests/inference/test_speech_stream.py)."""

import pytest
import torch

from nexus_o.bundle.presets import preset_config
from nexus_o.models.sampling import SamplingConfig
from nexus_o.models.speech_decoder import SpeechDecoder
from nexus_o.models.speech_decoder_config import SpeechDecoderConfig

K, ENTRIES, LLM = 4, 20, 16
GREEDY = SamplingConfig(greedy=True)


def tiny_config(**overrides) -> SpeechDecoderConfig:
    values = dict(num_layers=2, hidden_size=32, num_heads=4, intermediate_size=64, num_codebooks=K,
                  codebook_size=ENTRIES + 4, codec_entries=ENTRIES, llm_hidden_size=LLM, max_steps=64)
    return SpeechDecoderConfig(**{**values, **overrides})


def tiny_decoder(alignment: str = "prefix", seed: int = 0) -> SpeechDecoder:
    torch.manual_seed(seed)
    return SpeechDecoder.from_config(tiny_config(alignment=alignment)).eval()


def batch(seed: int = 0):
    """Two replies: the second has left-padded text and 4 of 7 frames."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2, 5, LLM, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    codes = torch.randint(0, ENTRIES, (2, K, 7), generator=g)
    return hidden, mask, codes, torch.tensor([7, 4])


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("alignment", ["prefix", "stepwise"])
def test_loss_ignores_padding_and_sees_real_codes(alignment):
    decoder = tiny_decoder(alignment)
    hidden, mask, codes, lengths = batch()
    out = decoder(hidden, mask, codes, lengths)
    assert out.logits.shape == (2, K, 7 + K, ENTRIES + 4) and out.per_codebook_loss.shape == (K,)
    padded = codes.clone()
    padded[1, :, 4:] = torch.randint(0, ENTRIES, (K, 3))
    padded[1, 2, 5] = 999  # garbage past the length is not even checked
    hidden_padded = hidden.clone()
    hidden_padded[1, :2] = 100.0  # masked text tokens
    same = decoder(hidden_padded, mask, padded, lengths)
    torch.testing.assert_close(same.loss, out.loss)
    changed = codes.clone()
    changed[1, 3, 3] = (codes[1, 3, 3] + 1) % ENTRIES  # a real code of the short sample
    assert not torch.allclose(decoder(hidden, mask, changed, lengths).loss, out.loss)


def test_text_padding_side_does_not_matter():
    decoder = tiny_decoder("prefix")
    hidden, _, codes, lengths = batch()
    alone = decoder(hidden[1:, 2:], None, codes[1:], lengths[1:])
    right = torch.cat([hidden[1:, 2:], torch.zeros(1, 2, LLM)], dim=1)
    left = torch.cat([torch.zeros(1, 2, LLM), hidden[1:, 2:]], dim=1)
    for padded, mask in ((right, [[1, 1, 1, 0, 0]]), (left, [[0, 0, 1, 1, 1]])):
        out = decoder(padded, torch.tensor(mask), codes[1:], lengths[1:])
        torch.testing.assert_close(out.per_codebook_loss, alone.per_codebook_loss)


def test_gradients_reach_every_parameter():
    decoder = tiny_decoder().train()
    hidden, mask, codes, lengths = batch()
    decoder(hidden, mask, codes, lengths).loss.backward()
    for name, param in decoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("alignment", ["prefix", "stepwise"])
def test_cache_gives_the_same_codes(alignment):
    decoder = tiny_decoder(alignment)
    hidden, mask, _, _ = batch()
    cached = decoder.generate(hidden, mask, max_frames=24, sampling=GREEDY)
    full = decoder.generate(hidden, mask, max_frames=24, sampling=GREEDY)
    assert torch.equal(cached.codes, full.codes) and torch.equal(cached.lengths, full.lengths)
    alone = decoder.generate(hidden[1:, 2:], None, max_frames=24, sampling=GREEDY)  # its text unpadded
    assert torch.equal(alone.codes[0], cached.codes[1, :, :int(alone.lengths[0])])


def test_generated_codes_follow_the_delay_pattern_and_limits():
    decoder = tiny_decoder()
    hidden, mask, _, _ = batch()
    columns = [c for c, _ in decoder.generate_steps(hidden, mask, max_frames=9, min_frames=3,
                                                     generator=torch.Generator().manual_seed(1))]
    for step, column in enumerate(columns[:K - 1]):
        assert (column[:, step + 1:] == decoder.vocab.pad_id).all()  # codebook k waits k steps
    out = decoder.generate(hidden, mask, max_frames=9, min_frames=3, generator=torch.Generator().manual_seed(1))
    assert ((out.lengths >= 3) & (out.lengths <= 9)).all()
    for b, length in enumerate(out.lengths.tolist()):
        assert (out.codes[b, :, :length] < ENTRIES).all() and (out.codes[b, :, :length] >= 0).all()
        assert (out.codes[b, :, length:] == decoder.vocab.pad_id).all()


def test_trained_decoder_stops_where_the_target_ends():
    """Overfit two replies; greedy generation must give back their codes and lengths (end convention)."""
    torch.manual_seed(0)
    decoder = SpeechDecoder.from_config(tiny_config(num_codebooks=3, max_steps=40))
    hidden, mask, codes, lengths = batch(seed=3)
    codes = codes[:, :3, :6]
    lengths = torch.tensor([6, 3])
    opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    for _ in range(120):
        opt.zero_grad()
        decoder(hidden, mask, codes, lengths).loss.backward()
        opt.step()
    out = decoder.eval().generate(hidden, mask, max_frames=20, sampling=GREEDY)
    assert out.lengths.tolist() == [6, 3]
    assert torch.equal(out.codes[0], codes[0]) and torch.equal(out.codes[1, :, :3], codes[1, :, :3])


def test_bad_inputs_are_clear_errors():
    decoder = tiny_decoder()
    hidden, mask, codes, lengths = batch()
    bad = codes.clone()
    bad[0, 1, 2] = ENTRIES  # a special id, not a codec entry
    with pytest.raises(ValueError, match=r"codes\[0, 1, 2\]=20 .*codec_entries=20"):
        decoder(hidden, mask, bad, lengths)
    bad[0, 1, 2] = -1
    with pytest.raises(ValueError, match=r"codes\[0, 1, 2\]=-1"):
        decoder(hidden, mask, bad, lengths)
    with pytest.raises(ValueError, match="3 codebooks .* num_codebooks=4"):
        decoder(hidden, mask, codes[:, :3], lengths)
    with pytest.raises(ValueError, match="T=0"):
        decoder(hidden, mask, codes[..., :0], None)
    with pytest.raises(ValueError, match="width 12 does not match .* llm_hidden_size=16"):
        decoder(hidden[..., :12], mask, codes, lengths)
    with pytest.raises(ValueError, match="without any token"):
        decoder.generate(hidden, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="code_lengths"):
        decoder(hidden, mask, codes, torch.tensor([8, 4]))


def test_config_checks_name_the_field_and_plug_into_the_composite():
    cfg = SpeechDecoderConfig()
    assert (cfg.start_id, cfg.pad_id, cfg.end_id) == (1023, 1022, 1021)
    with pytest.raises(ValueError, match="hidden_size=100"):
        tiny_config(hidden_size=100)
    with pytest.raises(ValueError, match="alignment='middle'"):
        tiny_config(alignment="middle")
    with pytest.raises(ValueError, match="end_id=3 must lie in"):
        tiny_config(end_id=3)
    with pytest.raises(ValueError, match="codebook_size=21 leaves no room"):
        tiny_config(codebook_size=21)
    with pytest.raises(ValueError, match="unknown key"):
        tiny_config(num_codebook=8)
    sub = tiny_config(alignment="stepwise", llm_hidden_size=64).to_dict()
    composite = preset_config("tiny", speech_decoder_config=sub)
    assert isinstance(composite.speech_decoder_config, SpeechDecoderConfig)
    assert composite.speech_decoder_config.alignment == "stepwise"
