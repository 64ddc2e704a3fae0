"""Speech -> text branch (paper §3.2): transcribe real speech into `asr` manifest lines.

Per audio file: decode -> ASR -> one manifest line (absolute audio path, task template). A
transcript whose confidence is below the threshold goes to review.jsonl instead (the manifest
line it would have been, its confidence and the reason), for a person to check. A file that does
not decode, is empty or gives an empty transcript is a reject with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexus_o.data.templates import render_sample
from nexus_o.processing.media_decoding import EmptyAudioError, MediaError, load_audio
from nexus_o.synth.pipeline import item_rng
from nexus_o.synth.runner import ShardSink


class SpeechToTextProcessor:
    """Real speech -> `asr` manifest lines; low-confidence transcripts go to review. Items are paths.

    Args:
        asr: an ASR backend (`transcribe(wav, rate, language) -> Transcript`).
        language: "en", "zh" or None (detected by the model).
        min_confidence: below it the sample goes to review.jsonl rather than the manifest.
    """

    def __init__(
        self,
        *,
        asr: Any,
        language: str | None = None,
        min_confidence: float = 0.5,
        seed: int = 0,
        prompt_language: str = "en",
        id_prefix: str = "",
    ):
        self.asr, self.language, self.min_confidence = asr, language, min_confidence
        self.seed, self.prompt_language, self.id_prefix = seed, prompt_language, id_prefix

    def process(self, index: int, item: str, sink: ShardSink) -> None:
        sink.stats.stages["input"] += 1
        try:
            wav, rate = load_audio(item)
        except EmptyAudioError:
            sink.reject(index, "read", "empty_audio", audio=item)
            return
        except (MediaError, OSError) as err:  # undecodable, missing, NaN or infinite samples
            sink.reject(index, "read", "unreadable_audio", detail=str(err), audio=item)
            return
        sink.stats.stages["decoded"] += 1
        try:
            transcript = self.asr.transcribe(wav, rate, language=self.language)
        except ValueError as err:
            sink.reject(index, "asr", "asr_error", detail=str(err), audio=item)
            return
        text = transcript.text.strip()
        if not text:
            sink.reject(index, "asr", "empty_transcript", audio=item)
            return
        sink.stats.stages["transcribed"] += 1
        sink.stats.audio_seconds += wav.size / rate
        record = render_sample(
            "asr",
            self.prompt_language,
            item_rng(self.seed, index, "prompt"),
            audio=item,
            transcript=text,
            id=f"{self.id_prefix}{index:08d}",
        )
        if transcript.confidence < self.min_confidence:
            sink.flag(
                {
                    "reason": "low_confidence",
                    "confidence": round(transcript.confidence, 4),
                    "language": transcript.language,
                    "sample": record,
                }
            )
            return
        sink.add(record)
        sink.stats.stages["written"] += 1



def list_audio_items(folder: str | Path, extensions: list[str]) -> list[str]:
    """Absolute paths of the audio files under `folder` (recursive), sorted so shards are stable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input audio folder not found: {folder}")
    suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    paths = sorted(
        str(p.resolve()) for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
    )
    if not paths:
        raise FileNotFoundError(f"no audio files ({', '.join(sorted(suffixes))}) under {folder}")
    return paths
