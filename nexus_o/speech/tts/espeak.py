"""espeak-ng voices through the shared library that `espeakng-loader` ships (no system package).

espeak-ng keeps one global synthesiser per process, so this module holds one `_Engine` per
process (created on first use, re-created after a fork) and serialises calls with a lock: threads
share it safely, and each worker of a process pool gets its own. Audio is collected in memory
through the library's synchronous callback; nothing touches the disk or the sound card.

Speakers: English accents (en-us, en, en-gb-x-rp, ...) and Mandarin `cmn`, each combined with a
voice variant from espeak-ng-data/voices/!v (male m1-m8, female f1-f5, named voices), a base
pitch and a speaking rate.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

from nexus_o.speech.tts.base import (
    BackendUnavailableError,
    Speaker,
    SynthesisError,
    VoiceSpace,
    check_speaker,
    to_float32,
)

# espeak_AUDIO_OUTPUT, espeak_PARAMETER, espeak_POSITION_TYPE and flags from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE, _PARAM_PITCH = 1, 3
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_DEFAULT_WPM = 175  # espeak-ng's default speaking rate, words a minute
_DEFAULT_PITCH = 50

# en-029 (Caribbean) is left out: Whisper tiny.en got 71 % WER on it, against 13-38 % for these.
ENGLISH_VOICES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-us-nyc")
MANDARIN_VOICES = ("cmn",)
# Human-sounding variants that Whisper tiny.en understands (WER < 0.4 on en-us, 5 sentences);
# robotic, whispering and novelty ones (robosoft*, klatt*, whisper, Demonic, croak, ...) and
# the hardest to understand (Andy, anika, caleb, grandma, shelby, travis, zac) are left out.
HUMAN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "Alex", "Annie", "Denis", "Gene", "Hugo", "Lee", "Mike", "Michael", "Reed",
    "adam", "aunty", "belinda", "benjamin", "david", "ed", "edward", "grandpa", "iven",
    "john", "linda", "max", "norbert", "paul", "quincy", "rob", "robert", "steph", "victor",
)  # fmt: skip
POOL_PITCHES = (30, 40, 50, 60, 70)
POOL_RATES = (0.8, 0.9, 1.0, 1.1, 1.2)

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _default_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as err:
        raise BackendUnavailableError(
            "the espeak backend needs the espeakng-loader package: pip install 'nexus-o[speech]' "
            "(or pass library_path= and data_path= of an espeak-ng install)"
        ) from err
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class _Engine:
    """The process's espeak-ng instance: library handle and callback buffer.

    Every method is called with `_ENGINE_LOCK` held.
    """

    def __init__(self, library_path: str, data_path: str):
        self.pid = os.getpid()
        self.data_path = data_path
        lib = ctypes.CDLL(library_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if self.sample_rate <= 0:
            raise BackendUnavailableError(f"espeak-ng failed to initialise with data at {data_path}")
        self.chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # kept referenced: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib

    def seed(self, value: int) -> None:
        """Seed espeak-ng's own random generator (`espeak_Initialize` seeds it from the clock, so
        without this the same utterance differs once a second has passed; espeak-ng >= 1.52)."""
        set_seed = getattr(self.lib, "espeak_ng_SetRandSeed", None)
        if set_seed is None:
            raise BackendUnavailableError("this espeak-ng has no espeak_ng_SetRandSeed (1.52 or later needed for "
                                          "reproducible=True)")
        set_seed.argtypes = [ctypes.c_long]
        set_seed(value)

    def _collect(self, samples, n_samples, _events) -> int:
        if n_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(samples, shape=(n_samples,)).copy())
        return 0  # 0 = continue synthesis

    def speak(self, text: str, voice_name: str, wpm: int, pitch: int) -> np.ndarray:
        """Synthesise one utterance. Returns int16 [T]; raises SynthesisError."""
        if self.lib.espeak_SetVoiceByName(voice_name.encode()) != 0:
            raise SynthesisError(f"espeak-ng has no voice {voice_name!r}", text)
        self.lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        self.chunks = []
        data = text.encode("utf-8")
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        chunks, self.chunks = self.chunks, []
        if status != 0:
            raise SynthesisError(f"espeak_Synth returned error code {status}", text)
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def unload(self) -> None:
        """dlclose the library, so that the next `_Engine` maps a fresh copy with fresh statics."""
        import _ctypes

        _ctypes.dlclose(self.lib._handle)


_ENGINE: _Engine | None = None
# Guards creating, reloading and using the engine: espeak-ng is one global state per process.
_ENGINE_LOCK = threading.Lock()
_FORK_HOOK_INSTALLED = False


def _fresh_lock_after_fork() -> None:
    # A fork while another thread held the lock would leave the child's copy locked forever.
    global _ENGINE_LOCK
    _ENGINE_LOCK = threading.Lock()


def _engine(library_path: str, data_path: str, fresh: bool = False) -> _Engine:
    """The process's engine, created on first use or after a fork; call with `_ENGINE_LOCK` held.

    Args:
        fresh: unload the loaded library first and load it anew (see `EspeakBackend.reproducible`).
    """
    global _ENGINE, _FORK_HOOK_INSTALLED
    if not _FORK_HOOK_INSTALLED:
        os.register_at_fork(after_in_child=_fresh_lock_after_fork)
        _FORK_HOOK_INSTALLED = True
    if _ENGINE is not None and fresh and _ENGINE.pid == os.getpid():
        _ENGINE.unload()
        _ENGINE = None
    if _ENGINE is None or _ENGINE.pid != os.getpid():
        _ENGINE = _Engine(library_path, data_path)
    elif _ENGINE.data_path != data_path:
        raise BackendUnavailableError(
            f"espeak-ng is already initialised in this process with {_ENGINE.data_path}; "
            f"one process cannot also use {data_path}"
        )
    return _ENGINE


class EspeakBackend:
    """espeak-ng TTS: `synthesize(text, speaker) -> (wav [T] float32, 22050)`.

    Args:
        library_path, data_path: libespeak-ng and its espeak-ng-data folder; default: the copies
            that espeakng-loader ships.
        min_peak: audio whose peak stays below this (e.g. a text of emoji, which espeak-ng skips)
            is a failed sample, not silence to train on.
        reproducible: make each utterance depend only on (text, speaker). libespeak-ng keeps
            static state across utterances (the pitch-flutter phase of its wave generator, which
            `espeak_Initialize` does not reset), so by default the same text and speaker come out
            a few percent different depending on what the process spoke before, and its random
            generator is seeded from the clock. With True the library is unloaded and loaded anew
            before each utterance (a few ms each) and its generator seeded with 0, so a re-run
            shard reproduces its audio exactly, at any time.
    """

    name = "espeak"
    languages = ("en", "zh")

    def __init__(
        self,
        library_path: str | None = None,
        data_path: str | None = None,
        min_peak: float = 1e-3,
        reproducible: bool = False,
    ):
        if library_path is None or data_path is None:
            default_lib, default_data = _default_paths()
            library_path, data_path = library_path or default_lib, data_path or default_data
        self.library_path, self.data_path = str(library_path), str(data_path)
        self.min_peak = min_peak
        self.reproducible = reproducible
        variants_dir = Path(self.data_path) / "voices" / "!v"
        if not variants_dir.is_dir():
            raise BackendUnavailableError(f"espeak-ng data has no voice variants folder {variants_dir}")
        self.variants = frozenset(p.name for p in variants_dir.iterdir())

    @property
    def sample_rate(self) -> int:
        with _ENGINE_LOCK:
            return _engine(self.library_path, self.data_path).sample_rate

    def voice_space(self, language: str) -> VoiceSpace:
        """English: 5 accents; Mandarin: `cmn`; each x (41 variants + none) x 5 pitches x 5 rates."""
        voices = {"en": ENGLISH_VOICES, "zh": MANDARIN_VOICES}.get(language)
        if voices is None:
            raise ValueError(f"espeak backend has no voices for language {language!r}")
        variants = (None, *(v for v in HUMAN_VARIANTS if v in self.variants))
        return VoiceSpace(self.name, language, voices, variants, POOL_PITCHES, POOL_RATES)

    def synthesize(self, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
        """Speak `text`; returns (wav [T] float32 in [-1, 1], sample rate 22050)."""
        check_speaker(self.name, speaker, self.languages)
        if speaker.variant is not None and speaker.variant not in self.variants:
            # espeak-ng silently ignores an unknown variant; fail loudly instead.
            raise ValueError(f"espeak-ng has no voice variant {speaker.variant!r} in {self.data_path}")
        voice_name = speaker.voice + (f"+{speaker.variant}" if speaker.variant else "")
        pitch = _DEFAULT_PITCH if speaker.pitch is None else speaker.pitch
        with _ENGINE_LOCK:
            engine = _engine(self.library_path, self.data_path, fresh=self.reproducible)
            if self.reproducible:
                engine.seed(0)
            try:
                pcm = engine.speak(text, voice_name, round(_DEFAULT_WPM * speaker.rate), pitch)
            except SynthesisError as err:
                raise SynthesisError(err.reason, text, speaker) from None
        wav = to_float32(pcm)
        if wav.size == 0 or float(np.abs(wav).max()) < self.min_peak:
            raise SynthesisError("espeak-ng produced no audible speech", text, speaker)
        return wav, engine.sample_rate
