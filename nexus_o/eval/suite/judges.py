"""The Seed-TTS eval judges, from folders the user gives, checked and pinned.

Seed-TTS eval transcribes the generated speech with Whisper-large-v3 (English) and FunASR's
Paraformer-zh (Chinese). Neither can be downloaded at run time, so the user passes local folders:

- Whisper-large-v3: a transformers folder (config.json with model_type whisper) or a CTranslate2
  folder (model.bin, faster-whisper). Where the folder states its shape, it must be large-v3's
  (128 mel bins, width 1280); large-v2 (80 mel bins) is refused.
- Paraformer-zh: a FunASR model folder (config.yaml naming a Paraformer model).

A judge is pinned by a fingerprint of its folder (file names and sizes, and its config files'
bytes), printed in the report next to every figure it produced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from nexus_o.eval.tasks import EvalError

CONFIG_FILES = ("config.json", "config.yaml", "preprocessor_config.json", "configuration.json")
LARGE_V3 = {"num_mel_bins": 128, "d_model": 1280}


@dataclass(frozen=True)
class Judge:
    """An ASR judge: `backend` is what `run_eval` takes (a `get_asr_backend` spec or an object)."""

    name: str
    backend: object
    folder: str | None = None
    fingerprint: str | None = None

    def describe(self) -> str:
        if self.folder is None:
            return f"{self.name} (given in Python)"
        return f"{self.name} ({self.backend}, sha256:{self.fingerprint})"

    def to_dict(self) -> dict:
        return {"name": self.name, "backend": self.backend if isinstance(self.backend, str) else
                getattr(self.backend, "name", type(self.backend).__name__), "folder": self.folder,
                "fingerprint": self.fingerprint}


def fingerprint(folder: Path) -> str:
    """16 hex digits of sha256 over every file's relative path and size, and the config files' bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        digest.update(f"{rel}\0{path.stat().st_size}\n".encode())
        if path.name in CONFIG_FILES:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def whisper_large_v3(folder: str | Path) -> Judge:
    """The English judge from a transformers or CTranslate2 Whisper-large-v3 folder."""
    folder = Path(folder).expanduser().resolve()
    config = folder / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("model_type") == "whisper":
        spec, shape = f"transformers:{folder}", json.loads(config.read_text())
    elif (folder / "model.bin").is_file():
        spec, shape = f"faster-whisper:{folder}", {}
        preprocessor = folder / "preprocessor_config.json"
        if preprocessor.is_file():
            shape = {"num_mel_bins": json.loads(preprocessor.read_text()).get("feature_size")}
    else:
        raise EvalError(f"{folder}: not a Whisper folder (no config.json with model_type whisper, no CTranslate2 "
                        f"model.bin)")
    for key, want in LARGE_V3.items():
        if key in shape and shape[key] != want:
            raise EvalError(f"{folder}: {key}={shape[key]}, but Whisper-large-v3 has {key}={want}; Seed-TTS eval "
                            f"judges English with large-v3")
    return Judge("Whisper-large-v3", spec, str(folder), fingerprint(folder))


def paraformer_zh(folder: str | Path) -> Judge:
    """The Chinese judge from a FunASR Paraformer-zh folder."""
    folder = Path(folder).expanduser().resolve()
    config = folder / "config.yaml"
    if not config.is_file():
        raise EvalError(f"{folder}: not a FunASR model folder (no config.yaml)")
    if "paraformer" not in config.read_text(encoding="utf-8").lower():
        raise EvalError(f"{config}: names no Paraformer model; Seed-TTS eval judges Chinese with Paraformer-zh")
    return Judge("Paraformer-zh", f"paraformer:{folder}", str(folder), fingerprint(folder))


JUDGE_OPTIONS = {"en": ("Whisper-large-v3", "--whisper-large-v3", whisper_large_v3),
                 "zh": ("Paraformer-zh", "--paraformer-zh", paraformer_zh)}


def tts_judge(lang: str, folder: str | Path | None, given: dict | None) -> tuple[Judge | None, str | None]:
    """(judge, None), or (None, why the benchmark is skipped) when its folder is not given or missing.

    given: judges passed as objects from Python, by language; they take precedence.
    """
    name, option, build = JUDGE_OPTIONS[lang]
    if given and lang in given:
        backend = given[lang]
        return Judge(getattr(backend, "name", name), backend), None
    if folder is None:
        return None, f"judge {name} not given ({option} DIR)"
    if not Path(folder).expanduser().is_dir():
        return None, f"judge {name} folder {folder} not found ({option})"
    return build(folder), None
