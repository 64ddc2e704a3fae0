"""The two branches of audio data synthesis (paper §3.2, Figure 2; SPEC §3) as runner processors.

Text -> speech (`TextToSpeechProcessor`), per input line:
    decode (UTF-8) -> text filters -> [chat: suitability + conversational rewrite] -> TTS with a
    speaker drawn from the pool of the text's language -> [tts / s2s: the answer in the fixed
    target voice] -> ASR round trip -> one manifest line (data-layer shape, task templates).
Speech -> text: `nexus_o.synth.speech_to_text`. `build_item_processor` / `run_synthesis` run either
branch from a `SynthRunConfig`.

Every failure of one item (bad bytes, a filter, an unsuitable query, a TTS or ASR failure, a
corrupt file) becomes a reject line with its stage and reason and the run goes on. Every random
choice (speaker, instruction wording) is seeded by (seed, item index), so a shard that is redone
after a crash gives the same lines (LLM rewriting at a temperature above 0 is the exception).
"""

from __future__ import annotations

import functools
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from nexus_o.data.templates import render_sample
from nexus_o.synth.config import CHAT_TASKS, SynthRunConfig, TTSSpec
from nexus_o.synth.filters import FilterConfig, check_text
from nexus_o.speech.language import detect_language
from nexus_o.synth.reproducible import ReproducibleTTS
from nexus_o.synth.rewrite import RewriteError
from nexus_o.synth.runner import ItemProcessor, RunSummary, ShardSink, run_shards
from nexus_o.speech.tts import Speaker, SpeakerSampler, SynthesisError, TTSRouter


def item_rng(seed: int, index: int, purpose: str) -> random.Random:
    """A generator that depends only on (seed, item index, purpose), never on processing order."""
    return random.Random(f"{seed}/{index}/{purpose}")


def resample(wav: np.ndarray, rate: int, target: int | None) -> tuple[np.ndarray, int]:
    """[T] float audio at `rate` -> (audio at `target`, target); unchanged when target is None."""
    if target is None or target == rate:
        return wav, rate
    import soxr

    return soxr.resample(wav, rate, target, quality="HQ").astype(np.float32, copy=False), target


def speak(
    tts: Any,
    text: str,
    speaker: Speaker,
    verifier: Any,
    index: int,
    stage: str,
    sink: ShardSink,
    sample_rate: int | None,
) -> tuple[np.ndarray, int] | None:
    """Synthesise `text` and check it by ASR; returns (wav [T], rate) or None after a reject."""
    try:
        wav, rate = tts.synthesize(text, speaker)
    except SynthesisError as err:
        sink.reject(index, stage, "tts_failed", detail=err.reason, speaker=speaker.name, text=text)
        return None
    if verifier is not None:
        language = detect_language(text)
        try:
            result = verifier.check(wav, rate, text, language)
        except ValueError as err:
            sink.reject(index, "verify", "asr_error", detail=str(err), speaker=speaker.name, text=text)
            return None
        sink.stats.asr_check(verifier.asr[language].name, f"{speaker.backend}:{speaker.voice}", result.passed)
        if not result.passed:
            sink.reject(
                index,
                "verify",
                result.reason,
                score=result.score,
                transcript=result.transcript,
                speaker=speaker.name,
                text=text,
            )
            return None
    return resample(wav, rate, sample_rate)


class TextToSpeechProcessor:
    """Text -> speech samples; see the module docstring. Items are raw input lines (bytes).

    Args:
        task: "asr", "tts", "s2t_chat" or "s2s_chat" (chat items are JSON {"query", "answer", "images"}).
        tts: anything with `synthesize(text, speaker) -> (wav, rate)` (a `TTSRouter`).
        sampler: draws the input speaker of each item from its language's pool.
        target: the fixed voice of tts targets and spoken answers.
        verifier: an `ASRVerifier`, or None to skip the round trip.
        rewriter: for chat tasks, `rewrite(query, answer) -> RewriteResult`.
        sample_rate / target_sample_rate: stored rates (None keeps the backend's).
        input_dir: folder that relative image paths of chat items resolve against.
    """

    def __init__(
        self,
        *,
        task: str,
        tts: Any,
        sampler: SpeakerSampler | None,
        target: Speaker | None = None,
        verifier: Any = None,
        rewriter: Any = None,
        filters: FilterConfig = FilterConfig(),
        seed: int = 0,
        prompt_language: str = "en",
        sample_rate: int | None = 16000,
        target_sample_rate: int | None = None,
        id_prefix: str = "",
        input_dir: str | Path = ".",
    ):
        if task in CHAT_TASKS and rewriter is None:
            raise ValueError(f"task {task!r} needs a rewriter")
        if task in ("tts", "s2s_chat") and target is None:
            raise ValueError(f"task {task!r} needs a target voice")
        if task != "tts" and sampler is None:
            raise ValueError(f"task {task!r} needs a speaker sampler")
        self.task, self.tts, self.sampler, self.target = task, tts, sampler, target
        self.verifier, self.rewriter, self.filters, self.seed = verifier, rewriter, filters, seed
        self.prompt_language, self.id_prefix = prompt_language, id_prefix
        self.sample_rate, self.target_sample_rate = sample_rate, target_sample_rate
        self.input_dir = Path(input_dir)

    def process(self, index: int, item: bytes, sink: ShardSink) -> None:
        sink.stats.stages["input"] += 1
        try:
            line = item.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            sink.reject(
                index,
                "read",
                "encoding",
                detail=f"byte 0x{item[err.start]:02x} at column {err.start + 1}",
                text=item.decode("utf-8", "backslashreplace"),
            )
            return
        if not line:
            sink.reject(index, "read", "empty")
            return
        fields = self._fields(index, line, sink)
        if fields is None:
            return
        sink.stats.stages["prepared"] += 1
        record = self._speak_and_render(index, fields, sink)
        if record is not None:
            sink.add(record)
            sink.stats.stages["written"] += 1

    def _filter(self, index: int, texts: list[str], stage: str, sink: ShardSink) -> bool:
        for text in texts:
            reason = check_text(text, self.filters)
            if reason is not None:
                sink.reject(index, stage, reason, text=text)
                return False
        return True

    def _fields(self, index: int, line: str, sink: ShardSink) -> dict | None:
        """{"question", "answer", "images"} of the item after filters (and rewrite), or None."""
        if self.task not in CHAT_TASKS:
            return (
                {"question": line, "answer": None, "images": []}
                if self._filter(index, [line], "filter", sink)
                else None
            )
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or not isinstance(data.get("query"), str):
                raise ValueError('expected a JSON object with a "query" string')
            if unknown := sorted(set(data) - {"query", "answer", "images"}):
                raise ValueError(f"unknown key(s) {unknown}; expected query, answer, images")
            images = [os.path.abspath(self.input_dir / p) for p in data.get("images") or []]
        except (ValueError, TypeError) as err:
            sink.reject(index, "read", "invalid_item", detail=str(err), text=line)
            return None
        if missing := [p for p in images if not os.path.isfile(p)]:
            sink.reject(index, "read", "missing_image", detail=missing[0])
            return None
        answer = data.get("answer")
        if not self._filter(index, [data["query"], *([answer] if answer else [])], "filter", sink):
            return None
        try:
            result = self.rewriter.rewrite(data["query"], answer)
        except RewriteError as err:
            sink.reject(index, "rewrite", "rewrite_failed", detail=err.reason, text=data["query"])
            return None
        if not result.suitable:
            sink.reject(index, "rewrite", f"unsuitable:{result.reason}", text=data["query"])
            return None
        if not result.answer:
            sink.reject(index, "rewrite", "no_answer", text=data["query"])
            return None
        sink.stats.stages["rewritten"] += 1
        spoken = [result.question] + ([result.answer] if self.task == "s2s_chat" else [])
        if not self._filter(index, spoken, "filter_rewritten", sink):
            return None
        return {"question": result.question, "answer": result.answer, "images": images}

    def _speak_and_render(self, index: int, fields: dict, sink: ShardSink) -> dict | None:
        name = f"{self.id_prefix}{index:08d}"
        question = fields["question"]
        audio = speech = None
        if self.task != "tts":
            try:
                speaker = self.sampler.draw(question, key=str(index))
            except ValueError as err:  # no pool for the text's language
                sink.reject(index, "tts", "no_speaker_pool", detail=str(err), text=question)
                return None
            clip = speak(self.tts, question, speaker, self.verifier, index, "tts", sink, self.sample_rate)
            if clip is None:
                return None
            audio = sink.write_audio(f"{name}.wav", *clip)
        # asr: the transcript is the spoken text; tts: the text is spoken by the target voice.
        target_text = question if self.task in ("asr", "tts") else fields["answer"]
        if self.task in ("tts", "s2s_chat"):
            clip = speak(
                self.tts,
                target_text,
                self.target,
                self.verifier,
                index,
                "tts_target",
                sink,
                self.target_sample_rate,
            )
            if clip is None:
                return None
            speech = {"audio": sink.write_audio(f"{name}.target.wav", *clip)}
        sink.stats.stages["synthesized"] += 1
        rng = item_rng(self.seed, index, "prompt")
        answer_field = {"asr": "transcript", "tts": "text"}.get(self.task, "response")
        record = render_sample(
            self.task,
            self.prompt_language,
            rng,
            audio=audio,
            speech=speech,
            id=name,
            **{answer_field: target_text},
        )
        if fields["images"]:
            user = next(m for m in record["messages"] if m["role"] == "user")
            user["content"] = "<image>" * len(fields["images"]) + user["content"]
            record["images"] = fields["images"]
        return record


def read_text_items(path: str | Path) -> list[bytes]:
    """The lines of a text or JSONL file as raw bytes (decoding is a per-item stage)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    return [raw.rstrip(b"\r\n") for raw in path.read_bytes().splitlines(keepends=True)]


def build_tts(spec: TTSSpec) -> tuple[TTSRouter, dict[str, Any]]:
    """The backends named by the pools and the target voice, and a router over them."""
    from nexus_o.speech.tts import get_tts_backend
    from nexus_o.speech.tts.piper import PiperBackend

    names = {p.backend for p in spec.pools.values()} | (
        {spec.target_voice.backend} if spec.target_voice else set()
    )
    backends: dict[str, Any] = {}
    for name in sorted(names):
        kind, _, arg = name.partition(":")
        backend = (
            PiperBackend(arg or spec.piper_model, noise_w_scale=spec.piper_noise_w)
            if kind == "piper"
            else get_tts_backend(name)
        )
        backends[name] = backend
    return TTSRouter({b.name: b for b in backends.values()}), backends


def build_item_processor(config: SynthRunConfig) -> ItemProcessor:
    """The processor of `config.branch`, with its backends (models load on first use)."""
    from nexus_o.speech.asr import get_asr_backend

    if config.branch == "speech_to_text":
        from nexus_o.synth.speech_to_text import SpeechToTextProcessor

        spec = config.transcribe
        return SpeechToTextProcessor(
            asr=get_asr_backend(spec.asr, cpu_threads=spec.cpu_threads),
            language=spec.language,
            min_confidence=spec.min_confidence,
            seed=config.seed,
            prompt_language=config.prompt_language,
            id_prefix=config.id_prefix,
        )
    from nexus_o.speech.tts import speaker_pool
    from nexus_o.synth.verify import ASRVerifier

    router, backends = build_tts(config.tts)
    pools = {
        lang: speaker_pool(lang, p.size, p.seed, backends[p.backend]) for lang, p in config.tts.pools.items()
    }
    target = None
    if (voice := config.tts.target_voice) is not None:
        backend = backends[voice.backend]
        default_voice = getattr(backend, "voice_name", None) or ("cmn" if voice.language == "zh" else "en-us")
        target = Speaker(
            backend.name,
            voice.voice or default_voice,
            voice.language,
            voice.variant,
            voice.pitch,
            voice.rate,
            voice.noise_scale,
        )
    verifier = None
    if (v := config.verify) is not None:
        languages = set(pools) | ({target.language} if target else set())
        asr = {
            lang: get_asr_backend(v.asr[lang], cpu_threads=v.cpu_threads)
            for lang in sorted(languages)
            if lang in v.asr
        }
        verifier = ASRVerifier(asr, max_wer=v.max_wer, max_cer=v.max_cer)
    return TextToSpeechProcessor(
        task=config.task,
        tts=ReproducibleTTS(router),
        sampler=SpeakerSampler(pools, seed=config.seed),
        target=target,
        verifier=verifier,
        rewriter=_build_rewriter(config) if config.task in CHAT_TASKS else None,
        filters=FilterConfig(**config.filters.model_dump()),
        seed=config.seed,
        prompt_language=config.prompt_language,
        sample_rate=config.tts.sample_rate,
        target_sample_rate=config.tts.target_sample_rate,
        id_prefix=config.id_prefix,
        input_dir=Path(config.input).resolve().parent,
    )


def _build_rewriter(config: SynthRunConfig) -> Any:
    from nexus_o.synth import rewrite

    spec = config.rewrite
    if spec.backend == "rules":
        return rewrite.RuleBasedRewriter()
    if spec.backend == "openai":
        key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        return rewrite.LLMRewriter(rewrite.OpenAICompatibleBackend(spec.base_url, spec.model, api_key=key))
    return rewrite.LLMRewriter(rewrite.TransformersBackend(spec.model_dir))


def run_synthesis(config: SynthRunConfig, engine: str | None = None, progress: bool = True) -> RunSummary:
    """Run `config` into `config.output_dir` (resuming finished shards); see `runner.run_shards`."""
    from nexus_o.config.loader import dump_config

    if config.branch == "speech_to_text":
        from nexus_o.synth.speech_to_text import list_audio_items

        items: list = list_audio_items(config.input, config.transcribe.extensions)
    else:
        items = read_text_items(config.input)
    summary = run_shards(
        items,
        functools.partial(build_item_processor, config),
        config.output_dir,
        shard_size=config.shard_size,
        fingerprint=config.fingerprint(),
        engine=engine or config.engine,
        workers=config.workers,
        ray_address=config.ray_address,
        progress=progress,
        desc=config.branch.replace("_", " "),
    )
    dump_config(config, Path(config.output_dir) / "config.yaml")
    return summary
