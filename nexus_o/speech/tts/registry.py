"""TTS backends by name, per-language speaker pools, and the per-sample speaker draw.

Names accepted by `get_tts_backend`:
  "espeak"                   espeak-ng voices (English accents and Mandarin `cmn`)
  "piper" / "piper:PATH"     the joe voice, or any piper .onnx voice at PATH
  "cosyvoice2:MODEL_DIR"     CosyVoice 2 zero-shot (needs the user's install, see zero_shot.py)
  "fish-speech"              no built-in adapter; raises with instructions
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from nexus_o.speech.language import check_language, detect_language
from nexus_o.speech.tts.base import BackendUnavailableError, Speaker, TTSBackend, sample_speakers

TTS_BACKENDS = ("espeak", "piper", "cosyvoice2", "fish-speech")


def get_tts_backend(spec: str) -> TTSBackend:
    """Build a TTS backend from its registry name (see the module docstring).

    Raises:
        ValueError: unknown name. BackendUnavailableError: a package or model is missing.
    """
    name, _, arg = spec.partition(":")
    if name == "espeak" and not arg:
        from nexus_o.speech.tts.espeak import EspeakBackend

        return EspeakBackend()
    if name == "piper":
        from nexus_o.speech.tts.piper import PiperBackend

        return PiperBackend(arg or None)
    if name == "cosyvoice2" and arg:
        from nexus_o.speech.tts.zero_shot import CosyVoice2Backend

        return CosyVoice2Backend(arg)
    if name == "fish-speech":
        from nexus_o.speech.tts.zero_shot import FISH_SPEECH_HELP

        raise BackendUnavailableError(FISH_SPEECH_HELP)
    raise ValueError(
        f"unknown TTS backend {spec!r}; expected espeak, piper, piper:VOICE.onnx, "
        "cosyvoice2:MODEL_DIR or fish-speech"
    )


def speaker_pool(language: str, size: int, seed: int, backend: str | TTSBackend = "espeak") -> list[Speaker]:
    """`size` distinct speakers of `backend` for `language`, the same list for the same seed.

    The paper uses 2,000 speakers a language. espeak offers 5 x 42 x 5 x 5 = 5,250 English and
    1 x 42 x 5 x 5 = 1,050 Mandarin speakers (voices x variants x pitches x rates); piper joe 25.
    """
    check_language(language)
    if isinstance(backend, str):
        backend = get_tts_backend(backend)
    return sample_speakers(backend.voice_space(language), size, seed)


def held_out_speaker_pools(language: str, train: int, test: int, seed: int,
                           backend: str | TTSBackend = "espeak") -> tuple[list[Speaker], list[Speaker]]:
    """A training pool and a held-out pool whose voices are disjoint: the backend's variants are
    split in a seeded order, the held-out pool's share (in proportion to `test`, at least one)
    is never used by a training speaker, so no held-out speaker's voice + variant is heard in
    training (pitch and rate alone do not make a new voice).

    Raises:
        ValueError: a pool size is not positive, the backend has a single variant, or a share
        of the variants is too small for its pool.
    """
    check_language(language)
    if isinstance(backend, str):
        backend = get_tts_backend(backend)
    space = backend.voice_space(language)
    if len(space.variants) < 2:
        raise ValueError(f"backend {space.backend!r} has one {language} variant: it cannot hold out whole voices")
    variants = list(space.variants)
    random.Random(f"held-out-variants/{seed}").shuffle(variants)
    n_test = min(len(variants) - 1, max(1, round(len(variants) * test / (train + test))))
    test_space = dataclasses.replace(space, variants=tuple(variants[:n_test]))
    train_space = dataclasses.replace(space, variants=tuple(variants[n_test:]))
    return sample_speakers(train_space, train, seed), sample_speakers(test_space, test, seed + 1)


class SpeakerSampler:
    """Draws the speaker of each sample from the pool of the text's language.

    The draw depends only on (seed, sample key), not on call order, so a resumed or sharded run
    gives every sample the speaker it would have had in a single run.

    Args:
        pools: language -> speakers ("en" and/or "zh"); a pool may mix backends.
        seed: run seed.
    """

    def __init__(self, pools: Mapping[str, Sequence[Speaker]], seed: int = 0):
        for language, pool in pools.items():
            check_language(language)
            if not pool:
                raise ValueError(f"the {language} speaker pool is empty")
            wrong = [s.name for s in pool if s.language != language]
            if wrong:
                raise ValueError(
                    f"the {language} speaker pool holds speakers of another language: {wrong[:3]}"
                )
        self.pools = {language: list(pool) for language, pool in pools.items()}
        self.seed = seed

    def draw(self, text: str, key: str) -> Speaker:
        """The speaker for sample `key` whose text is `text` (its language picks the pool).

        Raises:
            ValueError: there is no pool for the text's language.
        """
        language = detect_language(text)
        pool = self.pools.get(language)
        if pool is None:
            raise ValueError(
                f"text of sample {key!r} is {language!r} but there is no {language} speaker pool"
            )
        rng = random.Random(zlib.crc32(f"{self.seed}\x00{key}".encode()))
        return pool[rng.randrange(len(pool))]


class TTSRouter:
    """Sends each speaker to its own backend, so one pool may mix espeak, piper, ... voices."""

    def __init__(self, backends: Mapping[str, TTSBackend]):
        self.backends = dict(backends)

    def synthesize(self, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
        """Speak `text` with `speaker` on the backend it names; see `TTSBackend.synthesize`."""
        backend = self.backends.get(speaker.backend)
        if backend is None:
            raise ValueError(
                f"speaker {speaker.name} needs backend {speaker.backend!r}; have {sorted(self.backends)}"
            )
        return backend.synthesize(text, speaker)
