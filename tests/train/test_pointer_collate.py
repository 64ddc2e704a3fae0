"""Stage-3 batches for a "pointer" speech decoder: the reply token spoken at each frame."""

import json

import numpy as np
import pytest
import torch

from nexus_o.data.dataset import load_manifest_dataset
from nexus_o.data.manifest import RejectLog
from nexus_o.bundle.loading import build_preset
from nexus_o.train.collate import TrainCollator


@pytest.fixture(scope="module")
def processor():
    return build_preset("tiny")[1]


def _rows(tmp_path, lines):
    for i in range(len(lines)):
        np.save(tmp_path / f"c{i}.npy", np.ones((4, 10), dtype=np.int64))
    manifest = tmp_path / "tts.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return list(load_manifest_dataset([str(manifest)], on_error="raise"))


def _tts(i, reply, words=None, history=()):
    speech = {"codes": f"c{i}.npy", **({"words": words} if words else {})}
    return {"messages": [*history, {"role": "user", "content": f"Say: {reply}"},
                         {"role": "assistant", "content": reply}], "speech": speech}


def test_token_index_follows_the_word_timings(tmp_path, processor):
    words = [{"word": "red", "start": 0.0, "end": 0.4}, {"word": "square", "start": 0.6, "end": 1.0}]
    rows = _rows(tmp_path, [_tts(0, "red square", words), _tts(1, "blue")])
    batch = TrainCollator(processor, speech=True, frame_rate=10.0)(rows)
    index, mask = batch["speech_token_index"], batch["speech_text_mask"]
    assert index.shape == (2, 10)
    tokens = int(mask[0].sum())
    spans = processor.tokenizer("red square", add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert tokens == len(spans)
    first_of_square = next(i for i, (a, b) in enumerate(spans) if b > 4)
    assert int(index[0, 5]) < first_of_square == int(index[0, 6])  # "square" from 0.6 s = frame 6
    assert int(index[0, 0]) == 0 and int(index[0, -1]) == tokens - 1
    assert int(index[1, -1]) == int(mask[1].sum()) - 1


def test_only_the_last_reply_conditions_the_decoder(tmp_path, processor):
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]
    rows = _rows(tmp_path, [_tts(0, "red", history=history), _tts(1, "red")])
    batch = TrainCollator(processor, speech=True, frame_rate=10.0)(rows)
    assert int(batch["speech_text_mask"][0].sum()) == int(batch["speech_text_mask"][1].sum())
    ids = batch["input_ids"][0][batch["speech_text_mask"][0]]
    assert processor.tokenizer.decode(ids).strip() == "red"


def test_timings_that_do_not_fit_are_logged_and_the_row_replaced(tmp_path, processor):
    bad = [{"word": "circle", "start": 0.0, "end": 0.4}]
    rows = _rows(tmp_path, [_tts(0, "red square", bad), _tts(1, "blue")])
    rejects = RejectLog(tmp_path / "rejects.jsonl")
    batch = TrainCollator(processor, speech=True, rejects=rejects, frame_rate=10.0)(rows)
    assert batch["speech_codes"].shape[0] == 2
    logged = (tmp_path / "rejects.jsonl").read_text()
    assert "tts.jsonl" in logged and "'circle' is not in the reply text" in logged


def test_without_frame_rate_no_token_index(tmp_path, processor):
    rows = _rows(tmp_path, [_tts(0, "red")])
    assert "speech_token_index" not in TrainCollator(processor, speech=True)(rows)
    assert torch.is_tensor(TrainCollator(processor, speech=True, frame_rate=86.1)(rows)["speech_token_index"])
