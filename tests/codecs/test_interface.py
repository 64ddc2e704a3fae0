"""The SpeechCodec contract, checked on the tiny built-in codec: shapes, errors, streaming."""

import pytest
import torch

from nexus_o.codecs import CodecError, CodecMismatchError, check_codec_matches
from tests.codecs.conftest import as_wav, speechlike


def test_encode_decode_shapes_and_rates(builtin_codec):
    codec = builtin_codec
    assert codec.sample_rate == 22050 and codec.samples_per_frame == 256
    assert codec.frame_rate == pytest.approx(22050 / 256)
    assert (codec.num_codebooks, codec.codebook_size) == (4, 16)
    wav = torch.cat([as_wav(speechlike(0.25, seed=s)) for s in (3, 4)])
    codes = codec.encode(wav)
    assert codes.shape == (2, 4, 5513 // 256 + 1) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 16
    out = codec.decode(codes)
    assert out.shape == (2, 1, codes.shape[-1] * 256) and out.dtype == torch.float32
    assert out.abs().max() <= 1.0


def test_encode_resamples_when_given_a_rate(builtin_codec):
    wav16k = as_wav(speechlike(0.5, rate=16000))
    codes = builtin_codec.encode(wav16k, sample_rate=16000)
    assert codes.shape[-1] == 11025 // 256 + 1  # 0.5 s at 22.05 kHz


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (torch.full((1, 4, 3), 16), r"\[0, 16\).*max 16"),
        (torch.full((1, 4, 3), -1), r"min -1"),
        (torch.zeros(1, 3, 3, dtype=torch.long), "3 codebooks but the codec has 4"),
        (torch.zeros(1, 4, 0, dtype=torch.long), "empty code sequence"),
        (torch.zeros(4, 3, dtype=torch.long), r"shape \[B, K, T\]"),
        (torch.zeros(1, 4, 3), "integer tensor"),
    ],
)
def test_decode_rejects_bad_codes(builtin_codec, codes, message):
    with pytest.raises(CodecError, match=message):
        builtin_codec.decode(codes)


@pytest.mark.parametrize(
    ("wav", "message"),
    [
        (torch.zeros(1, 1000), r"\[B, 1, T\]"),
        (torch.zeros(1, 2, 1000), r"\[B, 1, T\]"),
        (torch.zeros(1, 1, 1000, dtype=torch.int16), "float"),
        (torch.zeros(1, 1, 0), "empty audio"),
    ],
)
def test_encode_rejects_bad_audio(builtin_codec, wav, message):
    with pytest.raises(CodecError, match=message):
        builtin_codec.encode(wav)


def test_encode_rejects_audio_shorter_than_the_stft_padding(builtin_codec, tiny_firefly):
    with pytest.raises(ValueError, match="300 samples is too short.*more than 512 samples"):
        builtin_codec.encode(torch.zeros(1, 1, 300))
    with pytest.raises(ValueError, match="700 samples is too short.*more than 768 samples"):
        tiny_firefly.encode(torch.zeros(1, 1, 700))


def test_check_codec_matches_names_both_sides(builtin_codec):
    check_codec_matches(builtin_codec, 4, 16)
    check_codec_matches(builtin_codec, 4, 18, sample_rate=22050)  # spare ids for BOS/pad are fine
    with pytest.raises(CodecMismatchError, match="speech decoder has 8 codebooks but codec 'builtin' has 4"):
        check_codec_matches(builtin_codec, 8, 16)
    with pytest.raises(CodecMismatchError, match="12 entries per codebook but codec 'builtin' emits ids up to 15"):
        check_codec_matches(builtin_codec, 4, 12)
    with pytest.raises(CodecMismatchError, match="expects 16000 Hz audio but codec 'builtin' runs at 22050 Hz"):
        check_codec_matches(builtin_codec, 4, 16, sample_rate=16000)


@pytest.mark.parametrize("chunks", [[1, 4, 9, 2, 7], [20, 0, 3]])
def test_streaming_decode_equals_one_shot(builtin_codec, chunks):
    codes = builtin_codec.encode(as_wav(speechlike(0.3, seed=5)))[..., : sum(chunks)]
    whole = builtin_codec.decode(codes)
    pieces, state, start = [], None, 0
    for size in chunks:
        wav, state = builtin_codec.decode_incremental(codes[..., start : start + size], state)
        pieces.append(wav)
        start += size
    tail, state = builtin_codec.decode_incremental(codes[..., :0], state, last=True)
    streamed = torch.cat(pieces + [tail], dim=-1)
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=0)
    # Audio comes out as soon as the right context has arrived, not all at the end.
    assert sum(p.shape[-1] for p in pieces) == (sum(chunks) - builtin_codec.right_context) * 256
    with pytest.raises(CodecError, match="already finished"):
        builtin_codec.decode_incremental(codes[..., :1], state)


def test_streaming_errors(builtin_codec):
    with pytest.raises(CodecError, match="empty code sequence"):
        builtin_codec.decode_incremental(torch.zeros(1, 4, 0, dtype=torch.long), last=True)
    _, state = builtin_codec.decode_incremental(torch.zeros(1, 4, 2, dtype=torch.long))
    with pytest.raises(CodecError, match="batch/codebooks"):
        builtin_codec.decode_incremental(torch.zeros(2, 4, 2, dtype=torch.long), state)


def test_codes_can_serve_as_training_targets(builtin_codec):
    codes = builtin_codec.encode(as_wav(speechlike(0.1, seed=6)))
    logits = torch.zeros(codes.shape[-1], 16, requires_grad=True)
    torch.nn.functional.cross_entropy(logits, codes[0, 0]).backward()  # fails on inference tensors
    assert logits.grad is not None
