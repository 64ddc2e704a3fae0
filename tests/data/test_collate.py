"""Padding and packing of tokenised features: positions, boundaries, media order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nexus_o.data.collate import IGNORE_INDEX, OmniCollator, pack_features, pad_features


def _feature(length: int, start: int, n_images: int = 0):
    ids = list(range(start, start + length))
    feature = {"input_ids": ids, "labels": ids}
    if n_images:
        # One row per image, tagged with its first token so order can be checked.
        feature["pixel_values"] = torch.full((n_images, 2), float(start))
        feature["image_names"] = [f"img{start}-{k}" for k in range(n_images)]
    return feature


def test_packing_restarts_positions_and_marks_boundaries():
    features = [_feature(3, 10, n_images=1), _feature(2, 20), _feature(4, 30, n_images=2)]
    batch = pack_features(features)
    assert batch["input_ids"].tolist() == [[10, 11, 12, 20, 21, 30, 31, 32, 33]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3]]
    assert batch["cu_seqlens"].tolist() == [0, 3, 5, 9] and batch["cu_seqlens"].dtype == torch.int32
    assert batch["seq_idx"].tolist() == [[0, 0, 0, 1, 1, 2, 2, 2, 2]]
    assert batch["max_seqlen"] == 4
    # Each sample's first label is ignored: it would be predicted from the previous sample.
    labels = batch["labels"][0].tolist()
    assert [labels[i] for i in (0, 3, 5)] == [IGNORE_INDEX] * 3
    assert labels[1:3] == [11, 12] and labels[6:] == [31, 32, 33]
    # Media keep sample order; a sample without images adds nothing.
    assert batch["pixel_values"][:, 0].tolist() == [10.0, 30.0, 30.0]
    assert batch["image_names"] == ["img10-0", "img30-0", "img30-1"]


def test_packing_keeps_given_mrope_positions():
    first = {"input_ids": [1, 2], "position_ids": [[0, 1], [0, 5], [0, 7]]}
    second = {"input_ids": [3], "position_ids": [[0], [0], [0]]}
    batch = pack_features([first, second])
    assert batch["position_ids"].shape == (3, 1, 3)
    assert batch["position_ids"][1, 0].tolist() == [0, 5, 0]
    assert "labels" not in batch


def test_padding_builds_mask_and_pads_labels():
    batch = pad_features([_feature(3, 10), _feature(1, 20)], pad_token_id=0, pad_to_multiple_of=4)
    assert batch["input_ids"].tolist() == [[10, 11, 12, 0], [20, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert batch["labels"][1].tolist() == [20, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    assert "position_ids" not in batch  # the model derives them from the mask


def test_padding_stacks_mrope_positions_in_hf_layout():
    features = [{"input_ids": [1, 2], "position_ids": np.arange(6).reshape(3, 2)},
                {"input_ids": [3], "position_ids": np.zeros((3, 1), dtype=int)}]
    assert pad_features(features, pad_token_id=0)["position_ids"].shape == (3, 2, 2)


def test_stack_keys_pad_per_sample_codes():
    features = [{"input_ids": [1], "speech_codes": np.ones((8, 5), dtype=np.int64)},
                {"input_ids": [2], "speech_codes": np.ones((8, 3), dtype=np.int64)},
                {"input_ids": [3], "speech_codes": None}]
    for batch in (pad_features(features, 0, stack_keys={"speech_codes": 1024}),
                  pack_features(features, stack_keys={"speech_codes": 1024})):
        assert batch["speech_codes"].shape == (3, 8, 5)
        assert batch["speech_codes_lengths"].tolist() == [5, 3, 0]
        assert (batch["speech_codes"][1, :, 3:] == 1024).all() and (batch["speech_codes"][2] == 1024).all()


def test_bad_features_raise_clear_errors():
    with pytest.raises(KeyError, match="feature 0 has no 'input_ids'"):
        pack_features([{"labels": [1]}])
    with pytest.raises(ValueError, match="labels has length 1 but input_ids has 2"):
        pad_features([{"input_ids": [1, 2], "labels": [1]}], 0)
    with pytest.raises(ValueError, match="'labels' present in some"):
        pack_features([{"input_ids": [1], "labels": [1]}, {"input_ids": [2]}])
    with pytest.raises(TypeError, match="cannot merge key 'extra'"):
        pack_features([{"input_ids": [1], "extra": [1]}, {"input_ids": [2], "extra": torch.ones(1)}])


def test_collator_calls_the_processor_and_drops_media_errors():
    seen = []

    def processor(row):
        seen.append(row["line"])
        return {"input_ids": [row["line"]] * row["line"], "labels": [row["line"]] * row["line"]}

    collate = OmniCollator(processor, pad_token_id=-1)
    rows = [{"line": 2, "source": "m.jsonl"}, {"line": 5, "source": "m.jsonl", "media_error": "audios[0]: bad"},
            {"line": 3, "source": "m.jsonl"}]
    batch = collate(rows)
    assert seen == [2, 3]
    assert batch["input_ids"].tolist() == [[2, 2, -1], [3, 3, 3]]
    assert [(i.line, i.reason) for i in collate.rejects.issues] == [(5, "audios[0]: bad")]
    assert collate([rows[1]]) == {}
