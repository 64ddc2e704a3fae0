"""`nexus-o data validate` end to end through typer's test runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from nexus_o.cli import app
from tests.data.media_files import asr_line, write_corrupt, write_manifest, write_wav

runner = CliRunner()


def test_validate_clean_manifest_exits_zero(tmp_path):
    write_wav(tmp_path / "a.wav", seconds=1.8)
    path = write_manifest(tmp_path / "m.jsonl", [asr_line("a.wav"), asr_line("a.wav", task="s2tt")])
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "lines:      2  valid: 2  bad: 0" in result.stdout
    assert "tasks:      asr 1, s2tt 1" in result.stdout
    assert "0.001 h input audio" in result.stdout


def test_validate_lists_bad_lines_and_exits_one(tmp_path):
    write_wav(tmp_path / "a.wav")
    write_corrupt(tmp_path / "c.wav")
    path = write_manifest(tmp_path / "m.jsonl", [asr_line("a.wav"), asr_line("c.wav"), "{", asr_line("x.wav")])
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 1
    assert "line 2: audios[0]: audio does not decode" in result.stdout
    assert "line 3: invalid JSON" in result.stdout
    assert f"line 4: audios[0]: file not found: {tmp_path / 'x.wav'}" in result.stdout

    schema_only = runner.invoke(app, ["data", "validate", str(path), "--no-media", "--json"])
    assert schema_only.exit_code == 1
    report = json.loads(schema_only.stdout)
    assert [b["line"] for b in report["bad"]] == [3]
    assert report["valid"] == 3 and report["audio_hours"] is None


def test_validate_names_a_directory_as_a_directory(tmp_path):
    (tmp_path / "clips").mkdir()
    path = write_manifest(tmp_path / "m.jsonl", [asr_line("clips")])
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 1
    assert f"line 1: audios[0]: is a directory, not a file: {tmp_path / 'clips'}" in result.stdout
    assert "file not found" not in result.stdout


def test_validate_missing_manifest_exits_two(tmp_path):
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "manifest not found" in result.output
