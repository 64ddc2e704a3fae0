"""The on-disk layout shared by codec backends: ``codec_config.json`` + safetensors weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_NAME = "codec_config.json"


def write_config(directory: str | Path, config: dict[str, Any]) -> Path:
    """Create ``directory`` and write ``config`` as its ``codec_config.json``; returns the folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def read_config(directory: str | Path, codec: str | None = None, known_keys: set[str] | None = None) -> dict[str, Any]:
    """Read ``directory/codec_config.json``; check its ``codec`` field and refuse unknown keys."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {directory}: not a saved codec folder")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(config, dict) or "codec" not in config:
        raise ValueError(f"{path}: expected a JSON object with a 'codec' field")
    if codec is not None and config["codec"] != codec:
        raise ValueError(f"{path}: holds a {config['codec']!r} codec, not {codec!r}")
    if known_keys is not None:
        unknown = sorted(set(config) - known_keys - {"codec"})
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; known keys are {sorted(known_keys | {'codec'})}")
    return config
