"""Reproducible espeak-ng audio: the same (text, speaker) gives the same samples in any process.

libespeak-ng carries hidden state from one utterance to the next: function-level statics that
`espeak_Initialize` does not reset (the pitch flutter phase in wavegen.c), and its own random
generator, seeded from the clock at initialisation (the breath noise of variants such as f2, f3,
f5 and victor). So the same text and speaker sound slightly different depending on what the
process spoke before and on when it started, and a shard redone after a crash would not match
the first attempt. `ReproducibleTTS` unloads the library (dlclose) before each espeak utterance,
so that `nexus_o.speech.tts.espeak` loads a fresh copy, and seeds its generator with a constant
(`espeak_ng_SetRandSeed`). It costs about 6 ms an utterance.

This reaches into `nexus_o.speech.tts.espeak`'s process-wide engine; it belongs there, as an
option of `EspeakBackend`, and moves there when that backend offers it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nexus_o.speech.tts import Speaker, TTSRouter
from nexus_o.speech.tts import espeak

ESPEAK_RAND_SEED = 0


class ReproducibleTTS:
    """Wraps a `TTSRouter`: espeak utterances start from a fresh, seeded engine; others pass through."""

    def __init__(self, router: TTSRouter):
        self.router = router

    def synthesize(self, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
        """Speak `text` with `speaker`: (wav [T] float32, sample rate); see `TTSBackend.synthesize`."""
        backend = self.router.backends.get(speaker.backend)
        if speaker.backend == "espeak" and backend is not None:
            fresh_espeak_engine(backend)
        return self.router.synthesize(text, speaker)


def fresh_espeak_engine(backend: Any) -> None:
    """Unload libespeak-ng and load it again for `backend` (an `EspeakBackend`), seeded."""
    import _ctypes

    with espeak._ENGINE_LOCK:
        engine, espeak._ENGINE = espeak._ENGINE, None
        if engine is not None:
            _ctypes.dlclose(engine.lib._handle)
    engine = espeak._engine(backend.library_path, backend.data_path)
    engine.lib.espeak_ng_SetRandSeed(ESPEAK_RAND_SEED)
