"""Streaming speech (`nexus_o.inference.speech_stream`): chunks concatenate to what `generate`
and a whole-reply decode give."""

import pytest
import torch

from nexus_o.inference.speech_stream import stream_audio, stream_codes
from nexus_o.models.sampling import SamplingConfig
from tests.models.test_speech_decoder import ENTRIES, GREEDY, K, batch, tiny_decoder

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class FakeCodec:
    """Each frame becomes 3 samples holding the frame's code sum. Like `SpeechCodec`, the
    incremental decode holds back the newest frame (right context 1) until `last=True`."""

    name, sample_rate, samples_per_frame, num_codebooks, codebook_size = "fake", 30, 3, K, ENTRIES

    def decode(self, codes):
        assert 0 <= int(codes.min()) and int(codes.max()) < self.codebook_size
        return codes.sum(dim=1, keepdim=True).float().repeat_interleave(3, dim=2)

    def decode_incremental(self, codes_chunk, state=None, *, last=False):
        pending = codes_chunk if state is None else torch.cat([state, codes_chunk], dim=2)
        ready = pending.shape[2] if last else max(pending.shape[2] - 1, 0)
        return self.decode(pending[..., :ready]), pending[..., ready:]


@pytest.mark.parametrize("chunk_frames", [1, 3, 50])
def test_stream_concatenates_to_generate(chunk_frames):
    decoder = tiny_decoder("stepwise")
    hidden, mask, _, _ = batch()
    options = dict(max_frames=17, sampling=SamplingConfig(temperature=0.8, top_k=5, top_p=0.9))
    whole = decoder.generate(hidden, mask, generator=torch.Generator().manual_seed(7), **options)
    chunks = list(stream_codes(decoder, hidden, mask, chunk_frames=chunk_frames,
                               generator=torch.Generator().manual_seed(7), **options))
    assert all(c.shape[2] == chunk_frames for c in chunks[:-1]) and 0 < chunks[-1].shape[2] <= chunk_frames
    assert torch.equal(torch.cat(chunks, dim=2), whole.codes)


def test_stream_audio_matches_decoding_the_whole_reply():
    decoder, codec = tiny_decoder(), FakeCodec()
    hidden, mask, _, _ = batch()
    whole = decoder.generate(hidden[:1], mask[:1], max_frames=12, sampling=GREEDY)
    chunks = list(stream_audio(decoder, codec, hidden[:1], mask[:1], chunk_frames=4, max_frames=12,
                               sampling=GREEDY))
    assert chunks[0].shape[2] == 3 * 3  # 4 frames arrived, 1 held back for its right context
    assert torch.equal(torch.cat(chunks, dim=2), codec.decode(whole.codes))
    with pytest.raises(ValueError, match="one reply"):
        next(stream_audio(decoder, codec, hidden, mask))
    codec.codebook_size = 16
    with pytest.raises(ValueError, match="codec_entries=20 .* codebook_size=16"):
        next(stream_audio(decoder, codec, hidden[:1]))
    codec.num_codebooks = 8
    with pytest.raises(ValueError, match="4 codebooks but codec 'fake' has 8"):
        decoder.check_codec(codec)
