"""Feature extraction on the tiny preset: shapes, what each feature is, batching, pairing, manifests."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from nexus_o.data.manifest import ManifestError
from nexus_o.eval.alignment import AlignmentInputError, MetricOptions
from nexus_o.eval.alignment.backbones import Backbone, load_baseline
from nexus_o.eval.alignment.extract import ModelFeatures, extract_features, prompt_states
from nexus_o.eval.alignment.results import feature_pairs
from nexus_o.eval.alignment.samples import check_enough_samples, read_caption_manifest
from tests.eval.alignment.caption_data import write_caption_manifest, write_lines

N = 12


@pytest.fixture(scope="module")
def backbone(tiny):
    model, processor = tiny
    return Backbone("ours", "NEXUS-O (tiny)", model.vl, processor, omni=model)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return read_caption_manifest(write_caption_manifest(tmp_path_factory.mktemp("captions"), N))


@pytest.fixture(scope="module")
def features(backbone, samples):
    # Batches of 5: padded rows and a short last batch.
    return extract_features(backbone, samples, batch_size=5, progress=False)


def test_shapes_and_layer_count(features, backbone):
    hidden = backbone.vl.config.text_config.hidden_size
    layers = backbone.num_layers + 1  # the token-embedding layer and each decoder layer
    assert set(features.unembedding) == {"vision", "text", "audio"}
    assert set(features.embedding) == {"vision", "text", "vision_audio"}
    for array in features.unembedding.values():
        assert array.shape == (N, hidden) and array.dtype == np.float32
    for array in features.embedding.values():
        assert array.shape == (layers, N, hidden)


def test_vision_mean_is_the_mean_of_the_merged_vision_tokens(features, backbone, samples):
    model, processor = backbone.omni, backbone.processor
    for i in (0, 4):  # an 84-pixel-high image and a 56-pixel one
        inputs = processor(text=processor.image_token, images=[samples[i].image])
        with torch.no_grad():
            merged = model.vl.model.visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output
        assert merged.shape[0] == int(inputs["image_grid_thw"].prod()) // 4
        np.testing.assert_allclose(features.unembedding["vision"][i], merged.mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_text_mean_is_the_mean_caption_token_embedding(features, backbone, samples):
    table = backbone.vl.get_input_embeddings().weight.detach()
    ids = backbone.processor.tokenizer(samples[3].caption, add_special_tokens=False)["input_ids"]
    np.testing.assert_allclose(features.unembedding["text"][3], table[ids].mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_audio_mean_is_the_mean_of_the_adapter_outputs(features, backbone, samples):
    processor = backbone.processor
    inputs = processor(text=processor.audio_token, audios=[samples[7].audio])
    with torch.no_grad():
        tokens = backbone.omni.encode_audio(inputs["input_features"], inputs["feature_lens"], inputs["audio_clip_ids"])
    np.testing.assert_allclose(features.unembedding["audio"][7], tokens.mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_last_token_states_match_an_unbatched_forward(features, backbone, samples):
    conversation = samples[2].conversation(with_audio=True)
    inputs = backbone.processor.apply_chat_template([conversation], add_generation_prompt=True)
    with torch.no_grad():
        hidden = backbone.omni(**inputs, output_hidden_states=True).hidden_states
    expected = torch.stack([h[0, -1] for h in hidden]).numpy()
    np.testing.assert_allclose(features.embedding["vision_audio"][:, 2], expected, atol=1e-5)
    # Index 0 of the caption side is the embedding of the caption's last token.
    ids = backbone.processor.tokenizer(samples[2].caption, add_special_tokens=False)["input_ids"]
    table = backbone.vl.get_input_embeddings().weight.detach()
    np.testing.assert_allclose(features.embedding["text"][0, 2], table[ids[-1]].numpy(), atol=1e-6)


def test_batch_size_does_not_change_the_states(backbone, samples):
    subset = samples[:4]
    one, audio_one = prompt_states(backbone, subset, with_audio=True, batch_size=1, progress=False)
    four, audio_four = prompt_states(backbone, subset, with_audio=True, batch_size=4, progress=False)
    np.testing.assert_allclose(one, four, atol=1e-4)
    np.testing.assert_allclose(audio_one, audio_four, atol=1e-5)


def test_the_two_prompts_differ_only_by_the_spoken_caption(samples):
    with_audio, without = samples[0].conversation(True), samples[0].conversation(False)
    assert with_audio["messages"][-1]["content"] == "<image><audio>"
    assert without["messages"][-1]["content"] == "<image>"
    assert without["images"] == with_audio["images"] and "audios" not in without
    assert all(m["role"] != "assistant" for m in with_audio["messages"])  # the caption is not in the prompt


def test_pairs(features):
    pairs = feature_pairs({"ours": features})
    assert list(pairs["unembedding"]) == ["ours:vision", "ours:vision+audio", "ours:audio"]
    both, text = pairs["unembedding"]["ours:vision+audio"]
    expected = np.concatenate([features.unembedding["vision"], features.unembedding["audio"]], axis=1)
    np.testing.assert_array_equal(both, expected)
    assert text is features.unembedding["text"]
    assert list(pairs["embedding"]) == ["ours:vision", "ours:vision+audio"]
    states, text_states = pairs["embedding"]["ours:vision+audio"]
    # Hidden state 0 (token embeddings) is left out: the prompt's last token is the same template token there.
    np.testing.assert_array_equal(states, features.embedding["vision_audio"][1:])
    np.testing.assert_array_equal(text_states, features.embedding["text"][1:])
    assert np.ptp(features.embedding["vision"][0], axis=0).max() == 0  # why: constant at layer 0


def test_features_round_trip(features, tmp_path):
    (tmp_path / "ours").mkdir()
    np.save(tmp_path / "ours" / "unembedding_stale.npy", np.zeros(3))  # left by an earlier run
    written = features.save(tmp_path / "ours")
    assert sorted(p.name for p in written) == sorted(
        ["unembedding_vision.npy", "unembedding_text.npy", "unembedding_audio.npy",
         "embedding_vision.npy", "embedding_text.npy", "embedding_vision_audio.npy"])
    loaded = ModelFeatures.load(tmp_path / "ours")
    for stage in ("unembedding", "embedding"):
        for key, array in getattr(features, stage).items():
            np.testing.assert_array_equal(getattr(loaded, stage)[key], array)
    (tmp_path / "ours" / "embedding_text.npy").unlink()
    with pytest.raises(FileNotFoundError, match="embedding_text.npy"):
        ModelFeatures.load(tmp_path / "ours")


def test_the_baseline_has_no_audio_path(backbone, samples):
    image_only = Backbone("baseline", "Qwen2.5-VL (tiny)", backbone.vl, backbone.processor)
    with pytest.raises(ValueError, match="has no audio encoder"):
        prompt_states(image_only, samples[:2], with_audio=True, progress=False)
    assert set(extract_features(image_only, samples[:2], progress=False).unembedding) == {"vision", "text"}


def test_baseline_folder_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        load_baseline(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "nexus_o"}))
    with pytest.raises(ValueError, match="model_type 'qwen2_5_vl'.*'nexus_o'"):
        load_baseline(tmp_path)


# -- manifests --------------------------------------------------------------------------------

def _line(content="<image>", images=("a.png",), caption="a red circle", **extra):
    return {"messages": [{"role": "user", "content": content}, {"role": "assistant", "content": caption}],
            "images": list(images), **extra}


@pytest.fixture
def media(tmp_path):
    write_caption_manifest(tmp_path, 2)
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes((tmp_path / "images/0.png").read_bytes())
    return tmp_path


@pytest.mark.parametrize("bad, message", [
    (_line(content="hello", images=()), "bad.jsonl:2: expected exactly one image, got 0"),
    (_line(content="<image><image>", images=("a.png", "b.png")), "bad.jsonl:2: expected exactly one image, got 2"),
    (_line(caption="   "), "bad.jsonl:2: the caption (last assistant message) is empty"),
    ({"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "<image>"}],
      "images": ["a.png"]}, "bad.jsonl:2: the last message must be the assistant's caption"),
    (_line(images=("missing.png",)), "bad.jsonl:2: images[0]: file not found"),
])
def test_bad_manifest_lines_name_the_line(media, bad, message):
    path = write_lines(media / "bad.jsonl", [_line(), bad])
    with pytest.raises(ManifestError, match=re.escape(message)):
        read_caption_manifest(path)


def test_manifest_level_errors(media):
    with pytest.raises(AlignmentInputError, match="holds no samples"):
        read_caption_manifest(write_lines(media / "empty.jsonl", []))
    mixed = [_line(), _line(content="<image><audio>", audios=["speech/0.wav"])]
    with pytest.raises(AlignmentInputError, match=r"mixed.jsonl:2: has a spoken caption while line 1 lacks one"):
        read_caption_manifest(write_lines(media / "mixed.jsonl", mixed))
    with pytest.raises(FileNotFoundError):
        read_caption_manifest(media / "absent.jsonl")
    assert len(read_caption_manifest(write_lines(media / "ok.jsonl", [_line()] * 5), limit=3)) == 3


def test_too_few_samples_says_how_many_are_needed():
    check_enough_samples(11, 10, MetricOptions(), "m.jsonl")
    with pytest.raises(AlignmentInputError, match="m.jsonl gives 10 sample.*topk=10.*needs at least 11"):
        check_enough_samples(10, 10, MetricOptions(), "m.jsonl")
    with pytest.raises(AlignmentInputError, match="needs at least 10"):  # svcca's 10 dims
        check_enough_samples(9, 3, MetricOptions(), "m.jsonl")
