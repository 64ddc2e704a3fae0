"""What the tiny world holds out, as rules that the generator enforces and tests check.

A figure on the test split says something only if the test data was never learnt from:
- TTS: no test (or val) text equals, or appears word for word inside, any text the model is
  trained to speak (stage-3 TTS lines, spliced phrases, spoken answers of stage-3 S2S); no test
  reference recording is a training target or a codec-fit clip.
- Codec: its codebooks are fitted on training audio only.
- Speakers: a held-out speaker's voice identity (espeak voice + variant) is never heard in
  training, and the held-out variants are never used by a training speaker at all.
- Images: held-out images are objects seen in training at placements never used for them.

`check_plan` checks a plan (pure, no audio); `check_world` checks a built world's files. Both raise
`SplitLeakError` listing every broken rule; the builder runs both, so a leaking world is never
written as finished.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nexus_o.synth.tiny_world.plan import WorldPlan
    from nexus_o.speech.tts import Speaker

TRAINING_MANIFESTS = ("stage1_train.jsonl", "stage2_train.jsonl", "stage3_tts.jsonl", "stage3_s2s.jsonl")
SPOKEN_TRAINING = ("stage3_tts.jsonl", "stage3_s2s.jsonl")  # manifests whose replies the model learns to speak
HELD_OUT_TTS = ("test/tts.jsonl", "val_tts.jsonl")


class SplitLeakError(ValueError):
    """A held-out split shares data with training; the message lists every leak found."""


def contains_words(text: str, phrase: str) -> bool:
    """True when `phrase` appears word for word (a contiguous run of whole words) inside `text`."""
    words, inner = text.split(), phrase.split()
    n = len(inner)
    return n > 0 and any(words[i : i + n] == inner for i in range(len(words) - n + 1))


def leaked_texts(held_out: Iterable[str], trained: Iterable[str]) -> list[tuple[str, str]]:
    """(held-out text, training text) pairs where the held-out text is inside the training text."""
    trained = list(dict.fromkeys(trained))
    return [(h, t) for h in dict.fromkeys(held_out) for t in trained if contains_words(t, h)]


def voice_identity(speaker: Speaker) -> tuple[str, str | None]:
    """(voice, variant): what makes a speaker sound like one person, whatever its pitch and rate."""
    return speaker.voice, speaker.variant


def _speaker_leaks(train: list[Speaker], test: list[Speaker]) -> list[str]:
    leaks = []
    train_ids = {voice_identity(s) for s in train}
    train_variants = {s.variant for s in train}
    for s in test:
        if voice_identity(s) in train_ids:
            leaks.append(f"held-out speaker {s.name} has the voice {voice_identity(s)} of a training speaker")
        elif s.variant in train_variants:
            leaks.append(f"held-out speaker {s.name} uses variant {s.variant!r}, also used in training")
    return leaks


def _text_leaks(held_out: dict[str, list[str]], trained: list[str]) -> list[str]:
    return [f"{split} TTS text {h!r} is inside the training text {t!r}"
            for split, texts in held_out.items() for h, t in leaked_texts(texts, trained)]


def check_plan(plan: WorldPlan) -> dict:
    """Check every rule that the plan alone decides; returns counts of what was checked.

    Raises:
        SplitLeakError: naming every leak.
    """
    spoken = [*plan.tts_texts["train"], *plan.tts_spliced, *(qa.answer for qa in plan.qa["train"])]
    leaks = _text_leaks({s: plan.tts_texts[s] for s in ("val", "test")}, spoken)
    leaks += _speaker_leaks(plan.train_speakers, plan.test_speakers)
    seen = {(i.kind, i.colour, i.label, i.placement) for i in plan.images["train"]}
    leaks += [f"held-out image {i.id} repeats a training image ({i.kind} {i.colour} {i.label}, placement "
              f"{i.placement})" for i in plan.images["val"] + plan.images["test"]
              if (i.kind, i.colour, i.label, i.placement) in seen]
    if leaks:
        raise SplitLeakError(f"{len(leaks)} leak(s) between training and held-out data:\n  " + "\n  ".join(leaks))
    return {"tts_held_out_texts": len(plan.tts_texts["val"]) + len(plan.tts_texts["test"]),
            "tts_training_texts": len(set(spoken)),
            "speakers": {"train": len(plan.train_speakers), "test": len(plan.test_speakers)},
            "held_out_images": len(plan.images["val"]) + len(plan.images["test"])}


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _reply(line: dict) -> str:
    return next(m["content"] for m in reversed(line["messages"]) if m["role"] == "assistant")


def _media(folder: Path, line: dict) -> set[Path]:
    paths = [*line.get("audios", []), *line.get("images", [])]
    if line.get("speech", {}).get("audio"):
        paths.append(line["speech"]["audio"])
    return {(folder / p).resolve() for p in paths}


def check_world(out: str | Path) -> dict:
    """Check a built world's files: held-out TTS texts and recordings against every training
    manifest and the codec-fit clips, and held-out inputs (speech, images) against training inputs.

    Returns counts of what was checked. Raises SplitLeakError naming every leak.
    """
    out = Path(out)
    training = {name: _read(out / name) for name in TRAINING_MANIFESTS}
    spoken = [_reply(line) for name in SPOKEN_TRAINING for line in training[name]]
    trained_media = {p for lines in training.values() for line in lines for p in _media(out, line)}
    fit = {(out / "codec_fit" / row["audio"]).resolve() for row in _read(out / "codec_fit" / "audio.jsonl")}
    fit_sources = {p.stem for p in fit}  # codec_fit holds links named after their clip ids
    leaks = []
    for name in HELD_OUT_TTS:
        lines = _read(out / name)
        folder = (out / name).parent
        leaks += [f"{name}: {h!r} is inside the training reply {t!r}"
                  for h, t in leaked_texts((_reply(line) for line in lines), spoken)]
        for line in lines:
            for path in _media(folder, line):
                if path in trained_media:
                    leaks.append(f"{name}: recording {path.name} is also a training file")
                if path in fit or path.stem in fit_sources:
                    leaks.append(f"{name}: recording {path.name} is among the codec-fit clips")
    for name in ("test/asr.jsonl", "test/vqa.jsonl"):
        folder = (out / name).parent
        for line in _read(out / name):
            leaks += [f"{name}: input {p.name} is also a training input" for p in _media(folder, line)
                      if p in trained_media]
    if leaks:
        raise SplitLeakError(f"{len(leaks)} leak(s) in the world at {out}:\n  " + "\n  ".join(leaks))
    return {"training_lines": sum(len(v) for v in training.values()), "codec_fit_clips": len(fit),
            "held_out_tts_lines": sum(len(_read(out / n)) for n in HELD_OUT_TTS)}
