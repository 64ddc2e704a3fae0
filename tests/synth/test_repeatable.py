"""Synthesis decisions repeat: two runs of the same config reject the same items for the same reasons."""

from __future__ import annotations

from pathlib import Path

import yaml

from nexus_o.synth.config import SynthRunConfig
from nexus_o.synth.pipeline import run_synthesis

REPO = Path(__file__).resolve().parents[2]
# Lines of configs/synth/example_texts.txt that espeak's randomly drawn voices (seed 0) say so
# badly that Whisper's temperature fallback used to kick in: its samples differed between runs.
HARD_LINES = (6, 8, 10)


def _config(tmp_path: Path, out: str) -> SynthRunConfig:
    lines = (REPO / "configs" / "synth" / "example_texts.txt").read_text(encoding="utf-8").splitlines()
    # The other lines stay as empty lines (cheap "empty" rejects) so that each text keeps its index,
    # and with it the voice the seeded sampler draws for it.
    texts = [line if i in HARD_LINES else "" for i, line in enumerate(lines)]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    config = yaml.safe_load((REPO / "configs" / "synth" / "text_to_speech.yaml").read_text())
    config.update(input=str(tmp_path / "texts.txt"), output_dir=str(tmp_path / out), workers=1)
    config["tts"]["pools"].pop("zh")
    config["verify"]["asr"].pop("zh")
    return SynthRunConfig(**config)


def test_two_runs_reject_byte_identically(tmp_path):
    first = run_synthesis(_config(tmp_path, "one"), progress=False)
    second = run_synthesis(_config(tmp_path, "two"), progress=False)
    rejects = (tmp_path / "one" / "rejects.jsonl").read_bytes()
    assert first.stats.asr and sum(checked for _, checked in first.stats.asr["whisper-tiny.en"].values()) == 3
    assert (tmp_path / "two" / "rejects.jsonl").read_bytes() == rejects
    assert (tmp_path / "two" / "manifest.jsonl").read_bytes() == (tmp_path / "one" / "manifest.jsonl").read_bytes()
    assert second.stats.to_dict() == first.stats.to_dict()
