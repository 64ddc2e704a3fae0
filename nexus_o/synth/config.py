"""Run configs of the synthesis pipeline (`nexus-o synth run`) and of the tiny world.

Both are strict (`StrictModel`: an unknown key is an error naming its path) and read from YAML
with `key=value` overrides by `nexus_o.config.loader.load_config`. Relative paths are taken as
written, i.e. relative to the working directory.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nexus_o.config.loader import StrictModel
from nexus_o.config.loader import ConfigError, load_config

Language = Literal["en", "zh"]
Engine = Literal["local", "ray"]
TextTask = Literal["asr", "tts", "s2t_chat", "s2s_chat"]
CHAT_TASKS = ("s2t_chat", "s2s_chat")
TARGET_VOICE_TASKS = ("tts", "s2s_chat")


class FilterSpec(StrictModel):
    """The paper's text filters (see `nexus_o.synth.filters`)."""

    max_en_words: int = Field(200, gt=0)
    max_zh_chars: int = Field(200, gt=0)
    max_non_text_ratio: float = Field(0.2, ge=0.0, le=1.0)


class RewriteSpec(StrictModel):
    """Suitability check and conversational rewrite of chat queries (see `nexus_o.synth.rewrite`).

    backend: "rules" (deterministic templates), "openai" (any OpenAI-compatible endpoint, e.g.
    vLLM serving Qwen2-72B) or "transformers" (a local model folder).
    """

    backend: Literal["rules", "openai", "transformers"] = "rules"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None  # name of the environment variable holding the key, never the key
    model_dir: str | None = None

    @model_validator(mode="after")
    def _backend_needs(self) -> "RewriteSpec":
        if self.backend == "openai" and not (self.base_url and self.model):
            raise ValueError("rewrite.backend 'openai' needs rewrite.base_url and rewrite.model")
        if self.backend == "transformers" and not self.model_dir:
            raise ValueError("rewrite.backend 'transformers' needs rewrite.model_dir")
        return self


class PoolSpec(StrictModel):
    """A per-language speaker pool: `size` distinct speakers of `backend`, drawn with `seed`."""

    backend: str = "espeak"  # a `get_tts_backend` name: espeak, piper, piper:PATH, cosyvoice2:DIR
    size: int = Field(200, gt=0)
    seed: int = 0


class SpeakerSpec(StrictModel):
    """One fixed voice (fields of `nexus_o.speech.tts.Speaker`); voice None = the backend's default."""

    backend: str = "piper"
    voice: str | None = None
    language: Language = "en"
    variant: str | None = None
    pitch: int | None = None
    rate: float = 1.0
    noise_scale: float | None = 0.0  # 0: piper's generator noise is not seedable, so a redo would differ


class TTSSpec(StrictModel):
    """Speaker pools, the fixed target voice (tts / s2s answers) and the stored sample rates."""

    pools: dict[Language, PoolSpec] = {"en": PoolSpec()}
    target_voice: SpeakerSpec | None = None
    piper_model: str | None = None  # a piper .onnx voice; None = joe
    piper_noise_w: float = Field(0.0, ge=0.0)  # duration noise; 0 keeps piper deterministic
    sample_rate: int | None = Field(16000, gt=0)  # input clips; None keeps the backend's rate
    target_sample_rate: int | None = None  # target speech; None keeps the voice's rate


class VerifySpec(StrictModel):
    """ASR round trip: an ASR backend per language and the highest error rate kept."""

    asr: dict[Language, str] = {"en": "whisper-tiny.en", "zh": "whisper-base"}
    max_wer: float = Field(0.2, ge=0.0)
    max_cer: float = Field(0.2, ge=0.0)
    cpu_threads: int = Field(1, ge=1)  # fixed: transcripts repeat


class TranscribeSpec(StrictModel):
    """Speech -> text branch: the ASR model and the confidence below which a sample goes to review."""

    asr: str = "whisper-base"
    language: Language | None = None  # None: the model detects it
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    extensions: list[str] = [".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus"]
    cpu_threads: int = Field(1, ge=1)  # fixed: transcripts repeat


class SynthRunConfig(StrictModel):
    """Everything one `nexus-o synth run` needs.

    branch "text_to_speech": `input` is a UTF-8 text file, one text a line (tasks asr, tts), or
    a JSONL file of {"query", "answer", "images"} objects (tasks s2t_chat, s2s_chat).
    branch "speech_to_text": `input` is a folder of audio files (searched recursively).
    """

    branch: Literal["text_to_speech", "speech_to_text"] = "text_to_speech"
    input: str
    output_dir: str
    seed: int = 0
    shard_size: int = Field(64, gt=0)
    workers: int = Field(0, ge=0)  # 0 = all cores
    engine: Engine = "local"
    ray_address: str | None = None  # None starts a local Ray cluster
    task: TextTask = "asr"
    prompt_language: Language = "en"  # language of the task instructions in the manifest
    id_prefix: str = ""
    filters: FilterSpec = FilterSpec()
    rewrite: RewriteSpec = RewriteSpec()
    tts: TTSSpec = TTSSpec()
    verify: VerifySpec | None = VerifySpec()  # null: no ASR round trip
    transcribe: TranscribeSpec = TranscribeSpec()

    @model_validator(mode="after")
    def _task_needs(self) -> "SynthRunConfig":
        if (
            self.branch == "text_to_speech"
            and self.task in TARGET_VOICE_TASKS
            and self.tts.target_voice is None
        ):
            raise ValueError(f"task {self.task!r} speaks with one fixed voice: set tts.target_voice")
        return self

    def fingerprint(self) -> dict:
        """The settings that decide the output (not where or how fast it runs)."""
        return self.model_dump(mode="json", exclude={"output_dir", "workers", "engine", "ray_address"})


class TinyWorldConfig(StrictModel):
    """Sizes of the tiny tri-modal world (`nexus-o synth tiny-world`); see `TINY_WORLD_SIZES`."""

    seed: int = 0
    colours: list[str] = ["red", "green", "blue", "yellow", "purple", "orange"]
    shapes: list[str] = ["circle", "square", "triangle", "star"]
    digits: list[int] = list(range(10))
    image_size: int = Field(112, ge=56)
    train_images_per_item: int = Field(10, gt=0)  # per (colour, shape) and (colour, digit) pair
    val_images: int = Field(24, ge=0)
    test_images: int = Field(60, ge=0)
    train_speakers: int = Field(40, gt=0)
    test_speakers: int = Field(8, gt=0)
    asr_train: int = Field(600, ge=0)
    asr_val: int = Field(48, ge=0)
    asr_test: int = Field(96, ge=0)
    stage2_asr: int = Field(600, ge=0)  # ASR samples mixed into stage 2 (taken from asr_train)
    tts_phrases: int = Field(30, ge=0)  # 2-word phrases spoken by the target voice for training
    tts_val_phrases: int = Field(6, ge=0)
    tts_test_phrases: int = Field(24, ge=0)  # held out: never spoken in training, not even inside a phrase
    tts_repeats: int = Field(3, gt=0)  # stage-3 TTS lines per text (different instructions)
    tts_spliced: int = Field(400, ge=0)  # phrases spliced from the target voice's word clips, with word timings
    verify_clips: int = Field(24, ge=0)  # clips checked by the ASR round trip (a subset: it is slow)
    verify_asr: str = "whisper-tiny.en"
    codec_fit_espeak: int = Field(100, ge=0)  # espeak clips listed for fitting the codec, beside joe's
    shard_size: int = Field(48, gt=0)
    workers: int = Field(0, ge=0)
    engine: Engine = "local"

    @model_validator(mode="after")
    def _check(self) -> "TinyWorldConfig":
        if not self.colours or not (self.shapes or self.digits):
            raise ValueError("the tiny world needs colours and at least one shape or digit")
        # Imported here: importing the tiny_world package imports this module (its build reads TinyWorldConfig).
        from nexus_o.synth.tiny_world.vocab import COLOUR_RGB, SHAPES

        if unknown := [c for c in self.colours if c not in COLOUR_RGB]:
            raise ValueError(f"unknown colour(s) {unknown}; known: {', '.join(COLOUR_RGB)}")
        if unknown := [s for s in self.shapes if s not in SHAPES]:
            raise ValueError(f"unknown shape(s) {unknown}; known: {', '.join(SHAPES)}")
        if any(not 0 <= d <= 9 for d in self.digits):
            raise ValueError(f"digits must be 0-9, got {self.digits}")
        if self.stage2_asr > self.asr_train:
            raise ValueError(f"stage2_asr ({self.stage2_asr}) cannot exceed asr_train ({self.asr_train})")
        return self


TINY_WORLD_SIZES: dict[str, dict] = {
    "default": {},
    "small": {
        "colours": ["red", "green", "blue"],
        "shapes": ["circle", "square"],
        "digits": [1, 2, 7],
        "train_images_per_item": 1,
        "val_images": 4,
        "test_images": 6,
        "train_speakers": 4,
        "test_speakers": 2,
        "asr_train": 48,
        "asr_val": 4,
        "asr_test": 8,
        "stage2_asr": 16,
        "tts_phrases": 2,
        "tts_val_phrases": 1,
        "tts_test_phrases": 1,
        "tts_repeats": 1,
        "tts_spliced": 8,
        "verify_clips": 2,
        "codec_fit_espeak": 4,
        "shard_size": 16,
    },
}
"""Presets: `default` feeds the main job (about a minute on 2 cores); `small` is for tests."""


def tiny_world_config(
    size: str = "default", path: str | None = None, overrides: list[str] | None = None
) -> TinyWorldConfig:
    """The preset `size`, then the YAML file `path` (if any), then `key=value` overrides.

    Raises:
        ConfigError: unknown size, unknown key or bad value (naming it).
    """
    if size not in TINY_WORLD_SIZES:
        raise ConfigError(f"unknown tiny-world size {size!r}; expected one of {', '.join(TINY_WORLD_SIZES)}")
    return load_config(TinyWorldConfig, path, overrides, base=dict(TINY_WORLD_SIZES[size]))
