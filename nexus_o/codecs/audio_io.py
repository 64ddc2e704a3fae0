"""Audio files for the codec tools: writing them, and finding them in folders and JSONL manifests.

Reading is `nexus_o.processing.media_decoding.load_audio`, the package's one audio reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples ``[T]`` as 16-bit PCM, clipping to [-1, 1]; creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")


def collect_audio_paths(source: str | Path) -> list[Path]:
    """Audio files named by ``source``: a folder (searched recursively), a JSONL manifest, or one file.

    A manifest line may carry ``"audios": [...]`` (the training-manifest convention) and/or
    ``"audio": "..."``; relative paths resolve against the manifest's folder. A malformed line
    or a missing file is an error naming the line.
    """
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not paths:
            raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {source}")
        return paths
    if not source.is_file():
        raise FileNotFoundError(f"audio source not found: {source}")
    if source.suffix.lower() in AUDIO_SUFFIXES:
        return [source]
    return _manifest_paths(source)


def _manifest_paths(manifest: Path) -> list[Path]:
    paths: list[Path] = []
    with manifest.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{manifest}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not valid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
            names = list(record.get("audios") or [])
            if record.get("audio"):
                names.append(record["audio"])
            for name in names:
                if not isinstance(name, str):
                    raise ValueError(f"{where}: audio entries must be path strings, got {name!r}")
                path = Path(name) if Path(name).is_absolute() else manifest.parent / name
                if not path.is_file():
                    raise FileNotFoundError(f"{where}: audio file not found: {path}")
                paths.append(path)
    if not paths:
        raise ValueError(f"manifest {manifest} names no audio (expected 'audios' or 'audio' fields)")
    return paths
