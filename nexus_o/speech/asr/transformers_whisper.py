"""Whisper through transformers, for users who have Whisper weights in a local folder.

The folder is what `save_pretrained` writes (config.json, weights, generation_config.json, the
processor's tokenizer and feature-extractor files). Loading passes `local_files_only=True`:
nothing is ever fetched from a hub.

Audio longer than Whisper's 30 s window is cut into consecutive 30 s windows, each transcribed on
its own, and the texts joined: nothing is clipped. (Whisper's sequential long-form decoding is
better at window edges; synthesised utterances are short, so the simple path serves here.)

Decoding is greedy and deterministic (one beam, no sampling, no temperature fallback), so the
same audio always gets the same transcript; torch's thread count is the process's own.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from nexus_o.speech.asr.base import ASR_SAMPLE_RATE, Transcript, to_16k

WINDOW_SECONDS = 30


class TransformersWhisperBackend:
    """`transcribe(wav, sample_rate, language) -> Transcript` with WhisperForConditionalGeneration.

    Args:
        model_dir: local folder of a Whisper checkpoint and its processor.
        device: torch device ("cpu", "cuda").
        max_new_tokens: token budget per 30 s window.
        name: registry name reported in results.
    """

    def __init__(self, model_dir: str | Path, device: str = "cpu", max_new_tokens: int = 224, name: str = ""):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir} is not a transformers Whisper folder (no config.json)")
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.name = name or f"transformers:{self.model_dir}"
        self._model = None
        self._processor = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                from transformers import WhisperForConditionalGeneration, WhisperProcessor

                self._processor = WhisperProcessor.from_pretrained(self.model_dir, local_files_only=True)
                model = WhisperForConditionalGeneration.from_pretrained(self.model_dir, local_files_only=True)
                self._model = model.to(self.device).eval()
        return self._model, self._processor

    def transcribe(self, wav: np.ndarray, sample_rate: int, language: str | None = None) -> Transcript:
        """Transcribe [T] float audio; confidence = exp(mean log-probability of the emitted tokens)."""
        audio = to_16k(wav, sample_rate)
        window = WINDOW_SECONDS * ASR_SAMPLE_RATE
        texts, logprobs = [], []
        for start in range(0, audio.size, window):
            text, token_logprobs = self._transcribe_window(audio[start : start + window], language)
            texts.append(text)
            logprobs.extend(token_logprobs)
        text = ("" if language == "zh" else " ").join(t for t in texts if t)
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
        return Transcript(text, min(1.0, confidence), language)

    def _transcribe_window(self, audio: np.ndarray, language: str | None) -> tuple[str, list[float]]:
        """One window of at most 30 s: (text, log-probability of each generated token)."""
        import torch

        model, processor = self._load()
        features = processor(audio, sampling_rate=ASR_SAMPLE_RATE, return_tensors="pt").input_features
        if getattr(model.generation_config, "is_multilingual", True):
            options = {"task": "transcribe", **({"language": language} if language else {})}
        elif language not in (None, "en"):
            raise ValueError(f"{self.model_dir} is an English-only Whisper; cannot transcribe {language!r}")
        else:
            options = {}  # English-only checkpoints take no language/task tokens
        with torch.inference_mode():
            out = model.generate(
                features.to(self.device, model.dtype),
                max_new_tokens=self.max_new_tokens,
                num_beams=1,
                do_sample=False,
                return_dict_in_generate=True,
                output_scores=True,
                **options,
            )
            scores = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        text = processor.batch_decode(out.sequences, skip_special_tokens=True)[0].strip()
        finite = [float(s) for s in scores[0] if math.isfinite(float(s))]
        return text, finite
