"""ASR backends behind one interface (`ASRBackend.transcribe -> Transcript`).

Backends load their models lazily: importing this package is cheap.
"""

from nexus_o.speech.asr.base import ASR_SAMPLE_RATE, ASRBackend, Transcript, to_16k
from nexus_o.speech.asr.registry import ASR_BACKENDS, get_asr_backend

__all__ = ["ASR_BACKENDS", "ASR_SAMPLE_RATE", "ASRBackend", "Transcript", "get_asr_backend", "to_16k"]
