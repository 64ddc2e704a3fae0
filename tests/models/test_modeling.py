import time

import numpy as np
import pytest
import torch
from transformers import Qwen2_5_VLForConditionalGeneration

from nexus_o.processing.audio_encoding import audio_token_count
from nexus_o.bundle.loading import build_preset
from nexus_o.models.modeling import NexusOForConditionalGeneration
from tests.conftest import tone


def _vl_twin(model, tmp_path):
    """A plain Qwen2.5-VL holding the same weights, loaded through transformers itself."""
    model.vl.save_pretrained(tmp_path / "vl")
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp_path / "vl").eval()


def test_tiny_builds_fast():
    from nexus_o.bundle.presets import preset_config

    config = preset_config("tiny")
    start = time.perf_counter()
    NexusOForConditionalGeneration(config)
    assert time.perf_counter() - start < 1.0


def test_logits_equal_qwen2_5_vl_without_audio(tiny, image, tmp_path):
    model, processor = tiny
    twin = _vl_twin(model, tmp_path)
    convs = [[{"role": "user", "content": [{"type": "image", "image": image},
                                          {"type": "text", "text": "What colour is the square?"}]}],
             [{"role": "user", "content": "Say a digit."}]]
    batch = processor.apply_chat_template(convs)
    assert batch["attention_mask"].eq(0).any()  # padded batch
    with torch.no_grad():
        ours = model(**batch).logits
        theirs = twin(**batch).logits
        # Our vision attention runs all windows in one call: equal up to float rounding ...
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
        # ... and bit for bit with transformers' own per-window attention.
        swapped = [(block, block.attn) for block in model.vl.model.visual.blocks]
        for block, attn in swapped:
            block.attn = attn._fallback[0]
        try:
            assert torch.equal(model(**batch).logits, theirs)
        finally:
            for block, attn in swapped:
                block.attn = attn


def test_batch_mixing_audio_images_and_text(tiny, image):
    model, processor = tiny
    convs = [
        {"messages": [{"role": "user", "content": "<image><audio>What is said?"},
                      {"role": "assistant", "content": "three"}], "images": [image], "audios": [tone(1.0)]},
        {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "<audio> and <audio>"},
                      {"role": "assistant", "content": "two clips"}], "audios": [tone(0.5), tone(2.0)]},
    ]
    batch = processor.apply_chat_template(convs, add_generation_prompt=False, return_labels=True)
    n_audio = int((batch["input_ids"] == model.config.audio_token_id).sum())
    expected = sum(audio_token_count(n, 1500, 5) for n in (16000, 8000, 32000))
    assert n_audio == expected
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.audio_adapter.linear_1.weight.grad is not None
    assert model.audio_encoder.conv1.weight.grad is not None
    model.zero_grad(set_to_none=True)
    # Each sample's audio changes its own logits only: sample 1 has no audio.
    with torch.no_grad():
        alone = model(**processor.apply_chat_template([convs[1]], add_generation_prompt=False)).logits
        mixed = model(**batch).logits
    length = alone.shape[1]
    assert torch.allclose(mixed[1, -length:], alone[0], atol=1e-5)


def test_long_clip_is_windowed_not_clipped(tiny):
    model, processor = tiny
    wav = tone(70.0)
    batch = processor(text=["<|AUDIO|>"], audios=[wav])
    assert batch["input_features"].shape[0] == 3  # 30 s + 30 s + 10 s windows
    assert batch["feature_lens"].tolist() == [3000, 3000, 1000]
    assert int((batch["input_ids"] == processor.audio_token_id).sum()) == 700  # 10 tokens a second
    with torch.no_grad():
        emb = model.encode_audio(batch["input_features"], batch["feature_lens"], batch["audio_clip_ids"])
    assert emb.shape == (700, model.config.vl_config.text_config.hidden_size)


def test_generate_with_audio_and_image(tiny, image):
    model, processor = tiny
    conv = {"messages": [{"role": "user", "content": "<image><audio>"}], "images": [image], "audios": [tone(1.0)]}
    batch = processor.apply_chat_template(conv)
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, batch["input_ids"].shape[1] + 4)


def test_save_load_round_trip(tiny, tmp_path):
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    from nexus_o.bundle.loading import load_model

    loaded = load_model(tmp_path)
    again, proc2 = loaded.model, loaded.processor
    assert loaded.codec is None  # no codec/ folder: a text-only bundle
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    batch = processor(text=["<|AUDIO|>hi"], audios=[tone(1.5)])
    batch2 = proc2(text=["<|AUDIO|>hi"], audios=[tone(1.5)])
    assert torch.equal(batch["input_ids"], batch2["input_ids"])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, again.eval()(**batch2).logits)


def test_placeholder_feature_mismatch_is_an_error(tiny):
    model, processor = tiny
    batch = processor(text=["<|AUDIO|>"], audios=[tone(1.0)])
    ids = batch["input_ids"][:, :-1]  # drop one audio placeholder
    with pytest.raises(ValueError, match=r"audio placeholder tokens but the audio clips give"):
        model(input_ids=ids, input_features=batch["input_features"], feature_lens=batch["feature_lens"],
              audio_clip_ids=batch["audio_clip_ids"])
    with pytest.raises(ValueError, match="no input_features"):
        model(input_ids=batch["input_ids"])


def test_seeded_tiny_preset_is_reproducible():
    a, _ = build_preset("tiny", seed=3)
    b, _ = build_preset("tiny", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_speech_condition_adds_token_embeddings_when_configured():
    from tests.train.conftest import TINY_DECODER

    model, _ = build_preset("tiny", seed=0)
    ids = torch.tensor([[11, 12, 13]])
    hidden = torch.randn(1, 3, model.config.vl_config.text_config.hidden_size)
    model.add_speech_decoder(dict(TINY_DECODER, add_token_embeddings=True))
    embeds = model.get_input_embeddings()(ids)

    def unit_rms(x):
        return x / x.pow(2).mean(dim=-1, keepdim=True).sqrt()

    # each term at unit RMS: the small embeddings are not drowned by the hidden states
    assert torch.allclose(model.speech_condition(hidden, ids), unit_rms(hidden) + unit_rms(embeds), atol=1e-5)
    assert torch.allclose(model.speech_condition(100 * hidden, ids), model.speech_condition(hidden, ids), atol=1e-4)
    model.add_speech_decoder(dict(TINY_DECODER, add_token_embeddings=False))
    assert torch.equal(model.speech_condition(hidden, ids), hidden)


def test_a_training_forward_builds_no_kv_cache(tiny):
    """The config's use_cache is on (generation wants it); a training step must not pay for one."""
    model, processor = tiny
    batch = processor.apply_chat_template([{"messages": [{"role": "user", "content": "hi"},
                                                         {"role": "assistant", "content": "hello there"}]}],
                                          return_labels=True)
    assert model.config.vl_config.text_config.use_cache
    try:
        model.train()
        assert model(**batch).cache is None
    finally:
        model.eval()
    with torch.no_grad():
        assert model(**batch).cache is not None  # eval keeps the default
