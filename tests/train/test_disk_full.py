"""Running out of disk while saving leaves no half-written checkpoint as the latest."""

import errno

import pytest

from nexus_o.config.loader import load_config
from nexus_o.models.modeling import NexusOForConditionalGeneration
from nexus_o.train.config import TrainConfig
from nexus_o.train.run import run_training
from nexus_o.train.trainer import CheckpointWriteError, latest_complete_checkpoint


def test_disk_full_during_checkpoint(tmp_path, tiny_world, monkeypatch):
    cfg = load_config(TrainConfig, None, base={
        "stage": "stage1_align", "model": {"preset": "tiny"}, "output_dir": str(tmp_path / "out"),
        "phases": [{"name": "align", "train": [str(tiny_world["asr"])], "max_steps": 4}],
        "batch_size": 2, "save_steps": 2, "logging_steps": 1})
    real_save = NexusOForConditionalGeneration.save_pretrained

    def save_or_fail(self, folder, *args, **kwargs):
        if str(folder).endswith("checkpoint-4"):
            (tmp_path / "out" / "align" / "checkpoint-4").mkdir(parents=True, exist_ok=True)
            (tmp_path / "out" / "align" / "checkpoint-4" / "model.safetensors").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, folder, *args, **kwargs)

    monkeypatch.setattr(NexusOForConditionalGeneration, "save_pretrained", save_or_fail)
    with pytest.raises(CheckpointWriteError, match=r"checkpoint-4 failed \(out of disk space\).*checkpoint-2"):
        run_training(cfg)
    phase = tmp_path / "out" / "align"
    assert not (phase / "checkpoint-4").exists()
    assert latest_complete_checkpoint(phase) == phase / "checkpoint-2"
    # a rerun with resume=auto continues from the complete checkpoint
    monkeypatch.setattr(NexusOForConditionalGeneration, "save_pretrained", real_save)
    run_training(cfg.model_copy(update={"resume": "auto"}))
    assert (tmp_path / "out" / "final" / "model.safetensors").is_file()
