"""Text-to-speech backends behind one interface (`TTSBackend`), speakers and speaker pools.

Backends load their engines lazily: importing this package is cheap.
"""

from nexus_o.speech.tts.base import (
    BackendUnavailableError,
    Speaker,
    SynthesisError,
    TTSBackend,
    VoiceSpace,
    sample_speakers,
)
from nexus_o.speech.tts.registry import (
    TTS_BACKENDS,
    SpeakerSampler,
    TTSRouter,
    get_tts_backend,
    held_out_speaker_pools,
    speaker_pool,
)

__all__ = [
    "TTS_BACKENDS",
    "BackendUnavailableError",
    "Speaker",
    "SpeakerSampler",
    "SynthesisError",
    "TTSBackend",
    "TTSRouter",
    "VoiceSpace",
    "get_tts_backend",
    "held_out_speaker_pools",
    "sample_speakers",
    "speaker_pool",
]
