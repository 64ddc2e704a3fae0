"""Every shipped stage config parses strictly and keeps the stage table where the paper sets it."""

from pathlib import Path

import pytest

from nexus_o.config.loader import ConfigError, load_config
from nexus_o.train.config import STAGE_TRAINABLE, TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/stage*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_stage_configs_parse(path):
    cfg = load_config(TrainConfig, path)
    assert cfg.stage == path.stem
    if path.parent.name == "7b":  # the paper's table, untouched
        assert cfg.trainable is None and cfg.trainable_components == STAGE_TRAINABLE[cfg.stage]
    if cfg.deepspeed:
        assert (CONFIGS.parent / cfg.deepspeed).is_file()


def test_stage3_runs_tts_then_s2s():
    for size in ("tiny", "7b"):
        cfg = load_config(TrainConfig, CONFIGS / size / "stage3_speech.yaml")
        assert [p.name for p in cfg.phases] == ["tts", "s2s"]


def test_overrides_and_errors(tmp_path):
    cfg = load_config(TrainConfig, CONFIGS / "tiny" / "stage1_align.yaml", ["optim.lr=5e-4", "phases.0.max_steps=7"])
    assert cfg.optim.lr == 5e-4 and cfg.phases[0].max_steps == 7
    with pytest.raises(ConfigError, match=r"(?s)stage1_align.yaml.*optim.lrr: unknown key"):
        load_config(TrainConfig, CONFIGS / "tiny" / "stage1_align.yaml", ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="trainable.0"):
        load_config(TrainConfig, CONFIGS / "tiny" / "stage1_align.yaml", ["trainable=[vision_tower]"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(TrainConfig, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(TrainConfig, CONFIGS / "tiny" / "stage1_align.yaml", ["novalue"])
