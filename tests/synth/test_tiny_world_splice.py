"""Spliced TTS phrases of the tiny world: valid lines, exact word timings, held-out texts, stable bytes."""

from __future__ import annotations

import io
import json
import random
import shutil

import numpy as np
import soundfile as sf
import torch
from rich.console import Console

from nexus_o.data.manifest import read_manifest
from nexus_o.quickstart import _encode_targets
from nexus_o.synth.config import tiny_world_config
from nexus_o.synth.tiny_world.manifests import _rebased
from nexus_o.synth.tiny_world.plan import plan_world
from nexus_o.synth.tiny_world.splice import (
    GAP,
    LEAD,
    TAIL,
    join_words,
    splice_phrases,
    splice_texts,
    trim_voiced,
)
from nexus_o.synth.tiny_world.vocab import Vocab


def spliced_samples(out):
    """(line dict, validated Sample) of every spliced line of stage3_tts.jsonl, media decoded."""
    raw = [json.loads(line) for line in (out / "stage3_tts.jsonl").read_text().splitlines()]
    samples = [s for _, s in read_manifest(out / "stage3_tts.jsonl", media="decode")]
    return [(line, s) for line, s in zip(raw, samples) if line["id"].startswith("tts-splice-")]


def clip_paths(out):
    return {json.loads(r)["id"]: f"clips/{json.loads(r)['audio']}"
            for r in (out / "clips" / "manifest.jsonl").read_text().splitlines()}


def test_spliced_lines_validate_and_their_timings_match_the_audio(world):
    out, report = world
    pairs = spliced_samples(out)
    assert report["tts_spliced"] == {"planned": 8, "written": 8, "skipped_missing_word": 0}
    assert [line["id"] for line, _ in pairs] == [f"tts-splice-{i:05d}" for i in range(8)]
    assert all(line["id"].startswith("tts-splice-") for line in
               [json.loads(r) for r in (out / "stage3_tts.jsonl").read_text().splitlines()][-8:])  # appended
    for line, sample in pairs:
        assert line["speech"]["audio"].startswith("clips/spliced/")
        text = sample.messages[-1].content
        assert [w.word for w in sample.speech.words] == text.split()
        wav, rate = sf.read(sample.speech.audio, dtype="float32")
        duration = len(wav) / rate
        words = sample.speech.words
        assert words[0].start == round(LEAD, 4) and abs(duration - TAIL - words[-1].end) < 1e-4
        for before, after in zip(words, words[1:]):  # 2e-4: timings are rounded to 4 decimals
            assert GAP[0] - 2e-4 <= after.start - before.end <= GAP[1] + 2e-4
        # every sample outside the words' spans (give or take the rounding) is silence; every span holds speech
        inside = np.zeros(len(wav), bool)
        for w in words:
            span = slice(int(w.start * rate) - 1, int(np.ceil(w.end * rate)) + 1)
            inside[span] = True
            assert np.abs(wav[span]).max() > 0.01, (line["id"], w.word)
        assert not np.any(wav[~inside]), line["id"]


def test_spliced_texts_are_distinct_and_never_a_held_out_phrase(world):
    out, report = world
    texts = [sample.messages[-1].content for _, sample in spliced_samples(out)]
    assert len(set(texts)) == len(texts) == 8
    held_out = set(report["tts_texts"]["val"]) | set(report["tts_texts"]["test"])
    assert not set(texts) & held_out
    vocab = set(report["vocab"]["answers"])
    assert all(2 <= len(t.split()) <= 3 and set(t.split()) <= vocab for t in texts)
    assert plan_world(tiny_world_config("small")).tts_spliced == texts  # from the seed alone


def test_splicing_again_rewrites_nothing_and_skips_phrases_of_a_missing_word(world, tmp_path):
    out, _ = world
    copy = tmp_path / "copy"
    shutil.copytree(out / "clips", copy / "clips")
    plan, clips = plan_world(tiny_world_config("small")), clip_paths(copy)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (copy / "clips" / "spliced").iterdir()}
    phrases, skipped = splice_phrases(copy, plan, clips, seed=0, progress=False)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (copy / "clips" / "spliced").iterdir()}
    assert skipped == 0 and len(phrases) == 8 and after == before
    word = plan.tts_spliced[0].split()[0]
    del clips[plan.target_clip(word)]
    phrases, skipped = splice_phrases(copy, plan, clips, seed=0, progress=False)
    using = [t for t in plan.tts_spliced if word in t.split()]
    assert skipped == len(using) > 0 and [p.text for p in phrases] == [t for t in plan.tts_spliced if t not in using]
    assert len(list((copy / "clips" / "spliced").iterdir())) == len(phrases)


def test_texts_stop_after_bounded_draws_on_a_tiny_vocabulary():
    vocab = Vocab(("red",), ("circle",), ())
    assert sorted(splice_texts(vocab, 100, set(), random.Random(0))) == ["circle red", "red circle"]
    assert splice_texts(vocab, 100, {"red circle"}, random.Random(0)) == ["circle red"]
    full = Vocab(("red", "blue"), ("star",), (1, 2))
    texts = splice_texts(full, 20, set(), random.Random(1))
    assert len(texts) == 20 == len(set(texts))
    assert splice_texts(full, 20, set(), random.Random(1)) == texts


def test_trim_and_join_place_words_exactly():
    rate = 1000
    word = np.zeros(500, np.float32)
    word[200:260] = 0.5  # voiced 0.20-0.26 s: kept from 0.15 s to 0.32 s
    trimmed = trim_voiced(word, rate)
    assert len(trimmed) == 170 and trimmed[50] == 0.5 and trimmed[49] == 0.0
    assert trim_voiced(np.full(10, 0.005, np.float32), rate).size == 0
    wav, timings = join_words([("a", trimmed), ("b", trimmed)], rate, random.Random(0))
    a, b = timings
    assert (a["start"], a["end"]) == (0.05, 0.22) and 0.04 <= b["start"] - a["end"] <= 0.10
    assert len(wav) == round((b["end"] + TAIL) * rate)
    assert np.array_equal(wav[round(b["start"] * rate):round(b["end"] * rate)], trimmed)


def test_rebased_lines_keep_the_word_timings():
    words = [{"word": "red", "start": 0.05, "end": 0.4}]
    line = {"task": "tts", "messages": [], "speech": {"audio": "clips/spliced/x.wav", "words": words}}
    assert _rebased([line], "../")[0]["speech"] == {"audio": "../clips/spliced/x.wav", "words": words}
    assert _rebased([{"speech": {"audio": "a.wav"}}], "../")[0]["speech"] == {"audio": "../a.wav"}


class _FrameCodec:
    """Stands in for the codec: 2 codebooks, one frame per 100 samples."""

    def encode(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        return torch.zeros(1, 2, wav.shape[-1] // 100, dtype=torch.long)


def test_encoded_targets_keep_the_word_timings(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(1000, np.float32), 16000)
    words = [{"word": "red", "start": 0.01, "end": 0.05}]
    for name in ("stage3_tts", "stage3_s2s", "val_tts", "val_s2s"):
        rows = [{"speech": {"audio": "a.wav", "words": words}}, {"speech": {"audio": "a.wav"}}]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _encode_targets(_FrameCodec(), tmp_path, Console(file=io.StringIO()))
    first, second = [json.loads(r) for r in (tmp_path / "stage3_tts.codes.jsonl").read_text().splitlines()]
    assert first["speech"] == {"codes": "codes/stage3_tts-00000.npy", "words": words}
    assert second["speech"] == {"codes": "codes/stage3_tts-00001.npy"}
    assert np.load(tmp_path / first["speech"]["codes"]).shape == (2, 10)
