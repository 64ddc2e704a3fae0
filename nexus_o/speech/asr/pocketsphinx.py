"""PocketSphinx: a light English recogniser (CMU Sphinx, HMM + n-gram), with the en-us acoustic
model, language model and dictionary that the pocketsphinx package ships.

Much weaker than Whisper on open vocabulary, but tiny and fast: useful as a second opinion and on
machines where even Whisper tiny is too slow.
"""

from __future__ import annotations

import threading

import numpy as np

from nexus_o.speech.asr.base import ASR_SAMPLE_RATE, Transcript, check_language_support, to_16k
from nexus_o.speech.tts.base import BackendUnavailableError


class PocketsphinxBackend:
    """`transcribe(wav, sample_rate, language="en") -> Transcript`; English only.

    Args:
        **decoder_options: extra pocketsphinx `Config` options (e.g. hmm=, lm=, dict= for another
            model); by default the package's en-us model.
    """

    name = "pocketsphinx"
    languages = ("en",)

    def __init__(self, **decoder_options):
        try:
            from pocketsphinx import Decoder
        except ImportError as err:
            raise BackendUnavailableError(
                "the pocketsphinx backend needs the pocketsphinx package: pip install 'nexus-o[speech]'"
            ) from err
        options = {"samprate": ASR_SAMPLE_RATE, "loglevel": "FATAL", **decoder_options}
        self._decoder = Decoder(**options)
        self._lock = threading.Lock()  # one decoder holds one utterance at a time

    def transcribe(self, wav: np.ndarray, sample_rate: int, language: str | None = None) -> Transcript:
        """Transcribe [T] float audio; confidence = the hypothesis posterior probability."""
        check_language_support(self.name, language, self.languages)
        audio = to_16k(wav, sample_rate)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hypothesis = self._decoder.hyp()
            if hypothesis is None:
                return Transcript("", 0.0, "en")
            confidence = self._decoder.get_logmath().exp(hypothesis.prob)
        return Transcript(hypothesis.hypstr, float(min(1.0, max(0.0, confidence))), "en")
