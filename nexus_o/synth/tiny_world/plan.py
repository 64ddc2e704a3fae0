"""The plan of a tiny world: every image, every clip to synthesise and every sample, from the seed.

Planning is pure and fast (no audio, no pixels), so a resumed build plans exactly the same world.
Randomness comes from generators keyed by (seed, purpose), never from the order of work.

Splits (the rules are in `splits.py`, checked on every plan): train and val speakers/images are
drawn from the training pools; test uses held-out speakers (whole voices: espeak variants no
training speaker uses) and held-out images (objects seen in training, at placements never used
for them in training). The target voice's test texts are word pairs that it never speaks in
training, not even inside a longer training phrase; its single words are all training texts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from nexus_o.synth.config import TinyWorldConfig
from nexus_o.synth.tiny_world.images import PLACEMENTS, ImageSpec
from nexus_o.synth.tiny_world.splice import splice_texts
from nexus_o.synth.tiny_world.splits import check_plan
from nexus_o.synth.tiny_world.vocab import QUESTIONS, Vocab, questions_for
from nexus_o.speech.tts import Speaker, SpeakerSampler, held_out_speaker_pools
from nexus_o.speech.tts.piper import joe_voice_path

INPUT_RATE = 16000  # input speech is stored at Whisper's rate; target speech at the voice's own


@dataclass(frozen=True)
class Clip:
    """One utterance to synthesise: `text` in `speaker`'s voice, stored at `rate` (None: native)."""

    id: str
    text: str
    speaker: Speaker
    rate: int | None
    verify: bool = False

    def item(self) -> dict:
        """The runner item (plain, picklable data)."""
        return {
            "id": self.id,
            "text": self.text,
            "speaker": self.speaker.to_dict(),
            "rate": self.rate,
            "verify": self.verify,
        }


@dataclass(frozen=True)
class QA:
    """A question about an image, asked in text and (through `clip`) aloud."""

    id: str
    image: ImageSpec
    question: str
    answer: str
    clip: str  # id of the spoken question


@dataclass
class WorldPlan:
    """Everything the builder makes; manifests are assembled from these lists."""

    vocab: Vocab
    train_speakers: list[Speaker]
    test_speakers: list[Speaker]
    target: Speaker
    images: dict[str, list[ImageSpec]] = field(default_factory=dict)  # split -> images
    qa: dict[str, list[QA]] = field(default_factory=dict)  # split -> questions
    asr: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # split -> (clip id, text)
    tts_texts: dict[str, list[str]] = field(default_factory=dict)  # split -> texts for the target voice
    tts_spliced: list[str] = field(default_factory=list)  # train texts spliced from the voice's word clips
    clips: dict[str, Clip] = field(default_factory=dict)

    def target_clip(self, text: str) -> str:
        return "joe-" + text.replace(" ", "-")


def _rng(seed: int, purpose: str) -> random.Random:
    return random.Random(f"tiny-world/{seed}/{purpose}")


def _plan_images(cfg: TinyWorldConfig, vocab: Vocab) -> dict[str, list[ImageSpec]]:
    """Train: `train_images_per_item` placements of every object; val/test: unused placements."""
    objects = vocab.objects
    queues = []  # per object: its placements in a seeded order, consumed split after split
    for k in range(len(objects)):
        order = list(range(len(PLACEMENTS)))
        _rng(cfg.seed, f"placements/{k}").shuffle(order)
        queues.append(order)
    images: dict[str, list[ImageSpec]] = {"train": [], "val": [], "test": []}
    wanted = {"train": None, "val": cfg.val_images, "test": cfg.test_images}
    for split, count in wanted.items():
        if count is None:
            picks = [k for k in range(len(objects)) for _ in range(cfg.train_images_per_item)]
        else:
            order = list(range(len(objects)))
            _rng(cfg.seed, f"objects/{split}").shuffle(order)
            picks = [order[i % len(order)] for i in range(count)]
        for k in picks:
            if not queues[k]:
                raise ValueError(
                    f"object {objects[k]} has no unused placement left for {split}: lower "
                    f"train_images_per_item, val_images or test_images ({len(PLACEMENTS)} placements)"
                )
            kind, colour, label = objects[k]
            n = len(images[split])
            seed = _rng(cfg.seed, f"image/{split}/{n}").randrange(2**31)
            images[split].append(
                ImageSpec(f"{split}-{n:05d}", split, kind, colour, label, queues[k].pop(), seed)
            )
    return images


def plan_world(cfg: TinyWorldConfig) -> WorldPlan:
    """The whole world of `cfg`, deterministically."""
    vocab = Vocab(tuple(cfg.colours), tuple(cfg.shapes), tuple(cfg.digits))
    train_pool, test_pool = held_out_speaker_pools("en", cfg.train_speakers, cfg.test_speakers, cfg.seed, "espeak")
    target = Speaker("piper", joe_voice_path().stem, "en", noise_scale=0.0)  # zero noise: reproducible
    plan = WorldPlan(vocab, train_pool, test_pool, target)
    samplers = {
        "train": SpeakerSampler({"en": plan.train_speakers}, cfg.seed),
        "test": SpeakerSampler({"en": plan.test_speakers}, cfg.seed),
    }
    samplers["val"] = samplers["train"]

    def add_clip(clip_id: str, text: str, split: str) -> str:
        speaker = samplers[split].draw(text, key=clip_id)
        plan.clips[clip_id] = Clip(clip_id, text, speaker, INPUT_RATE)
        return clip_id

    plan.images = _plan_images(cfg, vocab)
    for split, images in plan.images.items():
        rng = _rng(cfg.seed, f"questions/{split}")
        plan.qa[split] = []
        for image in images:
            for qtype, answer in questions_for(image.kind, image.colour, image.label):
                qid = f"qa-{split}-{len(plan.qa[split]):05d}"
                question = rng.choice(QUESTIONS[qtype])
                plan.qa[split].append(QA(qid, image, question, answer, add_clip(qid, question, split)))
    for split, count in (("train", cfg.asr_train), ("val", cfg.asr_val), ("test", cfg.asr_test)):
        rng = _rng(cfg.seed, f"asr/{split}")
        plan.asr[split] = [
            (add_clip(f"asr-{split}-{i:05d}", text, split), text)
            for i, text in ((i, vocab.random_phrase(rng)) for i in range(count))
        ]
    phrases = vocab.two_word_phrases()
    _rng(cfg.seed, "tts-phrases").shuffle(phrases)
    n_train, n_val, n_test = cfg.tts_phrases, cfg.tts_val_phrases, cfg.tts_test_phrases
    if n_train + n_val + n_test > len(phrases):
        raise ValueError(
            f"asked for {n_train + n_val + n_test} distinct TTS phrases; the vocabulary has {len(phrases)}"
        )
    held_out = phrases[n_train : n_train + n_val + n_test]
    plan.tts_texts = {
        "train": [*vocab.words, *phrases[:n_train]],
        "val": held_out[:n_val],
        "test": held_out[n_val:],
    }
    plan.tts_spliced = splice_texts(vocab, cfg.tts_spliced, set(held_out), _rng(cfg.seed, "tts-spliced"))
    for text in dict.fromkeys(t for texts in plan.tts_texts.values() for t in texts):
        clip_id = plan.target_clip(text)
        plan.clips[clip_id] = Clip(clip_id, text, target, None)
    _mark_verified(plan, cfg)
    check_plan(plan)
    return plan


def _mark_verified(plan: WorldPlan, cfg: TinyWorldConfig) -> None:
    """Pick the clips checked by the ASR round trip: a quarter from the target voice, the rest espeak."""
    if cfg.verify_clips == 0:
        return
    rng = _rng(cfg.seed, "verify")
    target_ids = sorted(c for c, clip in plan.clips.items() if clip.speaker == plan.target)
    pool_ids = sorted(c for c, clip in plan.clips.items() if clip.speaker != plan.target)
    n_target = min(len(target_ids), max(1, cfg.verify_clips // 4))
    chosen = rng.sample(target_ids, n_target) + rng.sample(
        pool_ids, min(len(pool_ids), cfg.verify_clips - n_target)
    )
    for clip_id in chosen:
        clip = plan.clips[clip_id]
        plan.clips[clip_id] = Clip(clip.id, clip.text, clip.speaker, clip.rate, verify=True)


def clip_items(plan: WorldPlan, seed: int) -> list[dict]:
    """The clips as runner items, in a seeded order that spreads the slow (piper, ASR) ones over shards."""
    items = [plan.clips[c].item() for c in sorted(plan.clips)]
    _rng(seed, "clip-order").shuffle(items)
    return items
