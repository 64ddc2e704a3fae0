"""Sequence packing (train/packing.py): a packed batch trains exactly as the same samples padded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from nexus_o.bundle.loading import build_preset
from nexus_o.cli import app
from nexus_o.config.loader import ConfigError, load_config
from nexus_o.train.collate import TrainCollator
from nexus_o.train.config import TrainConfig
from nexus_o.train.packing import RopeGrid, SamplePacker, first_fit_decreasing, mrope_positions


@pytest.fixture(scope="module")
def tiny_train():
    """A tiny model of its own (the session's is shared and in eval mode), in train mode."""
    model, processor = build_preset("tiny", seed=0)
    return model.train(), processor


def _turns(user: str, reply: str) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]


@pytest.fixture(scope="module")
def rows(tiny_world) -> list[dict]:
    """Six samples, 29-49 tokens: audio, image, text only, image + audio, video, audio."""
    root = tiny_world["asr"].parent
    video = np.random.default_rng(0).integers(0, 255, (4, 56, 56, 3), dtype=np.uint8)
    return [
        {"messages": _turns("<audio>Transcribe.", "digit 3"), "audios": [str(root / "a3.wav")]},
        {"messages": _turns("<image>What colour is the square?", "red"), "images": [str(root / "i0.png")]},
        {"messages": _turns("Say: digit 1", "digit 1")},
        {"messages": _turns("<image><audio>What is it?", "blue"), "images": [str(root / "i1.png")],
         "audios": [str(root / "a1.wav")]},
        {"messages": _turns("<video>What happens?", "nothing at all"), "videos": [video]},
        {"messages": _turns("<audio>Transcribe.", "digit 7"), "audios": [str(root / "a7.wav")]},
    ]


def _packer(model, processor, row_tokens: int | None) -> SamplePacker:
    return SamplePacker(RopeGrid.from_config(model.config), processor.tokenizer.pad_token_id, row_tokens)


def _loss_and_grads(model, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out.loss.detach(), grads


@pytest.mark.parametrize("row_tokens", [100, None], ids=["rows_of_100", "one_row"])
def test_packed_batch_has_the_loss_and_gradients_of_the_padded_one(tiny_train, rows, row_tokens):
    model, processor = tiny_train
    padded = TrainCollator(processor)(rows)
    packed = TrainCollator(processor, packer=_packer(model, processor, row_tokens))(rows)
    assert "attention_mask" not in packed and packed["position_ids"].shape[:2] == (4, packed["input_ids"].shape[0])
    assert packed["input_ids"].shape[0] == (3 if row_tokens else 1) < len(rows)
    assert int((packed["labels"] != -100).sum()) == int((padded["labels"] != -100).sum())
    if row_tokens:  # rows of different lengths: padding at the end of some row
        assert (packed["input_ids"][:, -1] == processor.tokenizer.pad_token_id).any()
    loss, grads = _loss_and_grads(model, padded)
    packed_loss, packed_grads = _loss_and_grads(model, packed)
    torch.testing.assert_close(packed_loss, loss, rtol=1e-5, atol=1e-6)
    assert grads.keys() == packed_grads.keys() and len(grads) == sum(p.requires_grad for p in model.parameters())
    for name, grad in grads.items():  # the audio encoder and the vision tower included
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def _segments(position_ids: torch.Tensor) -> list[tuple[int, int, int]]:
    """(row, start, end) of every packed segment: row 0 of position_ids restarts at 0 at each."""
    out = []
    for r, text in enumerate(position_ids[0]):
        starts = (text == 0).nonzero().flatten().tolist() + [len(text)]
        out += [(r, a, b) for a, b in zip(starts, starts[1:])]
    return out


def test_positions_are_each_samples_own_rope_index(tiny_train, rows):
    model, processor = tiny_train
    packed = TrainCollator(processor, packer=_packer(model, processor, 100))(rows)
    alone = [TrainCollator(processor)([row]) for row in rows]
    found = 0
    for r, a, b in _segments(packed["position_ids"]):
        ids = packed["input_ids"][r, a:b]
        sample = next((s for s in alone if torch.equal(s["input_ids"][0], ids)), None)
        if sample is None:  # the padding at a row's end
            assert (ids == processor.tokenizer.pad_token_id).all() and (packed["labels"][r, a:b] == -100).all()
            continue
        found += 1
        expected, _ = model.vl.model.get_rope_index(
            sample["input_ids"], sample["mm_token_type_ids"], sample.get("image_grid_thw"),
            sample.get("video_grid_thw"), sample.get("second_per_grid_ts"))
        assert torch.equal(packed["position_ids"][1:, r, a:b], expected[:, 0])
        assert torch.equal(packed["position_ids"][0, r, a:b], torch.arange(b - a))
        assert packed["labels"][r, a] == -100  # nothing predicted across the boundary
    assert found == len(rows)


def test_mrope_positions_match_transformers(tiny_train):
    """Text, an image, audio tokens (text positions), a video with fractional seconds per grid step."""
    model, _ = tiny_train
    types = torch.tensor([0] * 3 + [1] * 6 + [0] * 4 + [2] * 8 + [0] * 2 + [1] * 4 + [0])
    image_grid, video_grid = torch.tensor([[1, 4, 6], [1, 4, 4]]), torch.tensor([[2, 4, 4]])
    seconds = torch.tensor([0.7])
    ids = torch.where(types == 1, 5, torch.where(types == 2, 6, 11))[None]
    expected, _ = model.vl.model.get_rope_index(ids, types[None], image_grid, video_grid, seconds)
    got = mrope_positions(types, image_grid, video_grid, seconds, RopeGrid.from_config(model.config))
    assert torch.equal(got, expected[:, 0])


def test_first_fit_decreasing():
    assert first_fit_decreasing([5, 3, 8, 2, 9], 10) == [[4], [2, 3], [0, 1]]
    assert first_fit_decreasing([12, 1], 10) == [[0], [1]]  # too long for a row: one of its own


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_no_attention_across_samples(tiny_train, rows, backend):
    """In one packed row, changing sample A's tokens leaves sample B's logits unchanged."""
    model, processor = tiny_train
    packer = _packer(model, processor, None)
    a, b = rows[1], rows[0]  # image, then audio
    changed = {**a, "messages": _turns("<image>Which colour has the square?", "green")}
    model.set_attn_implementation(backend)
    try:
        with torch.no_grad():
            first = model(**packer([dict(processor.apply_chat_template([x], add_generation_prompt=False,
                                                                       return_labels=True)) for x in (a, b)]))
            second = model(**packer([dict(processor.apply_chat_template([x], add_generation_prompt=False,
                                                                        return_labels=True)) for x in (changed, b)]))
    finally:
        model.set_attn_implementation("sdpa")
    n_b = int(TrainCollator(processor)([b])["input_ids"].shape[1])
    torch.testing.assert_close(second.logits[0, -n_b:], first.logits[0, -n_b:], rtol=0, atol=1e-6)
    assert not torch.allclose(second.logits[0, :-n_b].mean(0), first.logits[0, :-n_b].mean(0))


def test_packed_inputs_refuse_a_cache_and_multi_row_flash(tiny_train, rows, monkeypatch):
    model, processor = tiny_train
    batch = TrainCollator(processor, packer=_packer(model, processor, 100))(rows[:3])
    with pytest.raises(ValueError, match="cannot use a cache"):
        model(**batch, use_cache=True)
    monkeypatch.setattr(model.vl.model.language_model.config, "_attn_implementation", "flash_attention_2")
    with pytest.raises(ValueError, match="one row"):
        model(**batch)


def _yaml(tmp_path, stage: str, **extra) -> str:
    cfg = {"stage": stage, "model": {"preset": "tiny"}, "output_dir": str(tmp_path / "out"),
           "phases": [{"name": "p", "train": ["x.jsonl"], "max_steps": 1}], **extra}
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_pack_to_is_strict_and_refused_in_stage3(tmp_path):
    assert load_config(TrainConfig, _yaml(tmp_path, "stage2_sft", pack_to=512)).pack_to == 512
    assert load_config(TrainConfig, _yaml(tmp_path, "stage1_align")).pack_to is None
    with pytest.raises(ConfigError, match="pack_to: stage 3"):
        load_config(TrainConfig, _yaml(tmp_path, "stage3_speech", pack_to=512))
    with pytest.raises(ConfigError, match="pack_to"):
        load_config(TrainConfig, _yaml(tmp_path, "stage2_sft", pack_to=0))
    with pytest.raises(ValueError, match="packing is for LLM batches"):
        TrainCollator(object(), speech=True, packer=SamplePacker(RopeGrid(2, 2), 0, 64))


def test_packer_follows_the_attention_backend(tmp_path, monkeypatch):
    from nexus_o.bundle.omni import OmniModel
    from nexus_o.train.run import _packer

    omni = OmniModel(*build_preset("tiny", seed=0))
    cfg = load_config(TrainConfig, _yaml(tmp_path, "stage1_align", pack_to=256))
    assert _packer(omni, cfg).row_tokens == 256
    assert _packer(omni, load_config(TrainConfig, _yaml(tmp_path, "stage2_sft"))) is None
    monkeypatch.setattr(omni.model.vl.model.language_model.config, "_attn_implementation", "flash_attention_2")
    assert _packer(omni, cfg).row_tokens is None  # one unpadded row: flash finds samples from positions


def test_train_cli_with_packing_keeps_the_losses(tmp_path, tiny_world, monkeypatch):
    """`nexus-o train` stage 2, four samples a step: packed rows give the losses of padded ones."""
    rows_per_batch: list[int] = []

    class Spy(TrainCollator):
        def __call__(self, rows):
            batch = super().__call__(rows)
            rows_per_batch.append(batch["input_ids"].shape[0] if "position_ids" in batch else 0)
            return batch

    monkeypatch.setattr("nexus_o.train.run.TrainCollator", Spy)
    runner = CliRunner()
    losses = {}
    for name, extra in (("padded", {}), ("packed", {"pack_to": 128})):
        rows_per_batch.clear()
        out = tmp_path / name
        cfg = {"stage": "stage2_sft", "model": {"preset": "tiny"}, "output_dir": str(out), "batch_size": 4,
               "logging_steps": 1, "save_steps": 10, "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
               "phases": [{"name": "sft", "train": [str(tiny_world["vqa"]), str(tiny_world["asr"])],
                           "max_steps": 2}], **extra}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
        result = runner.invoke(app, ["train", "--config", str(tmp_path / f"{name}.yaml")], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        history = yaml.safe_load((out / "sft" / "log_history.json").read_text())
        losses[name] = [h["loss"] for h in history if "loss" in h]
        assert rows_per_batch and (all(0 < n < 4 for n in rows_per_batch) if extra else not any(rows_per_batch))
    assert len(losses["packed"]) == 2 and losses["packed"] == pytest.approx(losses["padded"], rel=1e-4)
