"""`nexus-o synth filter`: kept and rejected lines, bad encodings and empty lines."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from nexus_o.cli import app


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_synth_filter_cli(tmp_path):
    lines = [
        b"What colour is the square?",
        b"Visit example.com for more",
        b"caf\xe9 latin-1 is not UTF-8",
        b"",
        b"   ",
        "正方形是什么颜色？".encode(),
        b"Solve $x^2$ now",
    ]
    source = tmp_path / "texts.txt"
    source.write_bytes(b"\r\n".join(lines) + b"\n")
    kept, rejects = tmp_path / "kept.jsonl", tmp_path / "rejects.jsonl"

    result = CliRunner().invoke(
        app, ["synth", "filter", str(source), "--out", str(kept), "--rejects", str(rejects)]
    )

    assert result.exit_code == 0, result.output
    assert _read_jsonl(kept) == [
        {"line": 1, "text": "What colour is the square?"},
        {"line": 6, "text": "正方形是什么颜色？"},
    ]
    assert [(r["line"], r["reason"]) for r in _read_jsonl(rejects)] == [
        (2, "url"),
        (3, "encoding"),
        (4, "empty"),
        (5, "empty"),
        (7, "latex"),
    ]
    assert _read_jsonl(rejects)[1]["text"] == "caf\\xe9 latin-1 is not UTF-8"
    assert "read 7  kept 2" in result.output
    assert "rejected encoding: 1" in result.output
    assert "rejected empty: 2" in result.output


def test_synth_filter_cli_missing_input(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "synth",
            "filter",
            str(tmp_path / "nope.txt"),
            "--out",
            str(tmp_path / "k"),
            "--rejects",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2
    assert "nope.txt" in result.output
