"""The small tiny world, built once per session for the tiny-world tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_o.synth.tiny_world import build_tiny_world


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> tuple[Path, dict]:
    """(folder, build report) of the small world, seed 0; tests must not change its files."""
    out = tmp_path_factory.mktemp("tiny_world")
    report = build_tiny_world(out, seed=0, size="small", progress=False)
    return out, report
