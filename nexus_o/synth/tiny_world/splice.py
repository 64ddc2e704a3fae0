"""Multi-word phrases of the target voice, spliced from its single-word clips, with word timings.

The world's naturally spoken TTS phrases are few (two words each), too few for a speech decoder
to learn to say word pairs it never heard. Splicing the target voice's word clips gives many
phrases ("green star four", "seven circle") whose word timings are exact by construction, which
the decoder's "pointer" alignment reads (`speech.words` in the manifest).

A spliced WAV is: 0.05 s of silence, word, a seeded gap of 0.04-0.10 s, word, ..., 0.10 s of
silence; each word is its clip trimmed to the voiced part (first/last sample with |x| > 0.01),
keeping 0.05 s before and 0.06 s after. A word's timing is the span of its trimmed clip.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from nexus_o.synth.tiny_world.splits import leaked_texts
from nexus_o.synth.tiny_world.vocab import Vocab

if TYPE_CHECKING:
    from nexus_o.synth.tiny_world.plan import WorldPlan

VOICED = 0.01  # |x| above this is speech, not piper's near-silent edges
KEEP_BEFORE, KEEP_AFTER = 0.05, 0.06  # seconds kept around the voiced part (onsets, releases)
LEAD, TAIL = 0.05, 0.10  # seconds of silence before the first word and after the last
GAP = (0.04, 0.10)  # seconds of silence between words, drawn per gap
FOLDER = "clips/spliced"  # relative to the world
DRAWS_PER_TEXT = 50  # draw budget per wanted text, so a small vocabulary cannot loop forever


@dataclass(frozen=True)
class SplicedPhrase:
    """One spliced phrase: its planned `index`, text, WAV (relative to the world) and word timings."""

    index: int
    text: str
    audio: str
    words: list[dict]  # [{"word", "start", "end"}], seconds in the WAV, in text order


def splice_texts(vocab: Vocab, count: int, exclude: set[str], rng: random.Random) -> list[str]:
    """Up to `count` distinct phrases, none holding a text of `exclude` word for word, in draw order.

    Each draw picks one of five forms with equal odds: "colour shape", "digit colour",
    "colour shape digit", "digit colour shape", or two distinct vocabulary words. Forms the
    vocabulary cannot fill (no shapes, no digits) waste their draw. After
    `DRAWS_PER_TEXT * count` draws the texts found so far are returned, possibly fewer.
    """
    colours, shapes, digits, words = vocab.colours, vocab.shapes, vocab.digit_words, vocab.words
    forms = (
        (colours, shapes), (digits, colours), (colours, shapes, digits), (digits, colours, shapes), None,
    )  # fmt: skip
    texts: dict[str, None] = {}  # insertion-ordered set
    for _ in range(DRAWS_PER_TEXT * count):
        if len(texts) == count:
            break
        form = rng.choice(forms)
        if form is None:
            if len(words) < 2:
                continue
            text = " ".join(rng.sample(words, 2))
        elif all(form):
            text = " ".join(rng.choice(pool) for pool in form)
        else:
            continue
        if not leaked_texts(exclude, [text]):
            texts.setdefault(text)
    return list(texts)


def trim_voiced(wav: np.ndarray, rate: int) -> np.ndarray:
    """The voiced part of `wav` [T] (see the module doc) with its margins; empty if nothing is voiced."""
    voiced = np.flatnonzero(np.abs(wav) > VOICED)
    if voiced.size == 0:
        return wav[:0]
    start = max(0, voiced[0] - round(KEEP_BEFORE * rate))
    stop = min(len(wav), voiced[-1] + 1 + round(KEEP_AFTER * rate))
    return wav[start:stop]


def join_words(words: list[tuple[str, np.ndarray]], rate: int, rng: random.Random) -> tuple[np.ndarray, list[dict]]:
    """Join trimmed word clips [T_i] with silences; returns the WAV [T] and the words' timings (s, 4 decimals)."""
    parts = [np.zeros(round(LEAD * rate), np.float32)]
    timings = []
    offset = len(parts[0])
    for i, (word, wav) in enumerate(words):
        if i:
            gap = np.zeros(round(rng.uniform(*GAP) * rate), np.float32)
            parts.append(gap)
            offset += len(gap)
        timings.append({"word": word, "start": round(offset / rate, 4), "end": round((offset + len(wav)) / rate, 4)})
        parts.append(wav.astype(np.float32))
        offset += len(wav)
    parts.append(np.zeros(round(TAIL * rate), np.float32))
    return np.concatenate(parts), timings


def _wav_bytes(wav: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wav, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write atomically (tmp + rename), and not at all when the file already holds `data`."""
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _word_clips(out: Path, plan: WorldPlan, clips: dict[str, str], words: set[str]) -> tuple[dict, int]:
    """{word: trimmed clip [T]} for the `words` whose target-voice clip exists and is voiced; and the rate."""
    import soundfile as sf

    trimmed, rates = {}, {}
    for word in sorted(words):
        ref = clips.get(plan.target_clip(word))
        if ref is None:
            continue
        wav, rates[word] = sf.read(out / ref, dtype="float32")
        if (voiced := trim_voiced(wav, rates[word])).size:
            trimmed[word] = voiced
    if len(set(rates.values())) > 1:
        raise ValueError(f"the target voice's word clips differ in sample rate: {sorted(set(rates.values()))}")
    return trimmed, next(iter(rates.values()), 0)


def splice_phrases(out: str | Path, plan: WorldPlan, clips: dict[str, str], seed: int,
                   progress: bool = True) -> tuple[list[SplicedPhrase], int]:
    """Write the WAV of every phrase in `plan.tts_spliced` under `out`/clips/spliced/.

    Args:
        clips: clip id -> WAV path relative to `out` (the clips that were synthesised).

    Returns:
        (the spliced phrases in plan order, the number skipped because a word's clip failed or is silent).
        A rerun rewrites nothing that is already identical; WAVs of phrases no longer planned are removed.
    """
    out = Path(out)
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    words, rate = _word_clips(out, plan, clips, {w for text in plan.tts_spliced for w in text.split()})
    phrases, skipped = [], 0
    for index, text in enumerate(tqdm(plan.tts_spliced, desc="splice", unit="phrase", disable=not progress)):
        if any(w not in words for w in text.split()):
            skipped += 1
            continue
        rng = random.Random(f"tiny-world/{seed}/splice/{index}")
        wav, timings = join_words([(w, words[w]) for w in text.split()], rate, rng)
        name = f"splice-{index:05d}.wav"
        _write_if_changed(folder / name, _wav_bytes(wav, rate))
        phrases.append(SplicedPhrase(index, text, f"{FOLDER}/{name}", timings))
    keep = {Path(p.audio).name for p in phrases}
    for stale in folder.iterdir():  # from a config with more phrases, or a killed write
        if stale.name not in keep and stale.suffix in (".wav", ".tmp"):
            stale.unlink()
    return phrases, skipped
