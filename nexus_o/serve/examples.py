"""What a tiny-world model knows, for the web demo: the world's test images and questions.

A model trained on the tiny world (`nexus-o quickstart`) answers a few kinds of question about
its pictures ("What digit is this?" on a digit, "What colour is the shape?" on a shape) and
nothing else: asked "What shape is this?" of a digit, it still names a shape. So the demo shows
the world's held-out test images with the questions it was trained to answer, written and spoken
(test voices), each one click away.

The examples come from a tiny-world folder (its `test_vqa.jsonl`, whose written and spoken items
share a question id: `qa-test-00000-text` / `-speech`). `find_world` finds the folder beside a
checkpoint: the quickstart keeps its world in `<run>/data` and its models in
`<run>/<stage>/final`; `nexus-o synth tiny-world --out DIR` writes the same files straight into DIR.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nexus_o.data.manifest import read_manifest
from nexus_o.data.schema import sample_conversation
from nexus_o.processing.conversation import Text
from nexus_o.synth.tiny_world.vocab import QUESTIONS

EXAMPLES_MANIFEST = "test_vqa.jsonl"


@dataclass(frozen=True)
class DemoExample:
    """One test question about one image, written and (when the world has it) spoken."""

    id: str
    kind: str  # the question type: shape, shape_colour, digit, digit_colour
    question: str
    answer: str  # the world's answer, shown so a newcomer can judge the reply
    image: Path
    audio: Path | None = None  # the question, spoken by a held-out test voice
    system: str | None = None  # the system prompt the spoken item was trained with

    def to_json(self, index: int) -> dict:
        """The page's view: no file paths, URLs under /demo/examples/ instead."""
        return {"id": self.id, "kind": self.kind, "question": self.question, "answer": self.answer,
                "system": self.system, "image_url": f"/demo/examples/{index}/image",
                "audio_url": f"/demo/examples/{index}/audio" if self.audio is not None else None}


def find_world(model: str | Path) -> Path | None:
    """The tiny-world folder beside checkpoint folder `model` (itself, its run's `data/`, or the
    same two levels up), or None (a preset name, or a checkpoint trained on other data)."""
    path = Path(model)
    if not path.is_dir():
        return None
    path = path.resolve()
    for folder in (path, *list(path.parents)[:2]):
        for candidate in (folder / "data", folder):
            if (candidate / EXAMPLES_MANIFEST).is_file():
                return candidate
    return None


def _kind(question: str) -> str:
    return next((kind for kind, wordings in QUESTIONS.items() if question in wordings), "other")


def load_examples(world: str | Path, limit: int = 8) -> list[DemoExample]:
    """Up to `limit` test examples of the world in `world`, the question types taking turns, so
    that the first few show every kind of question the model was taught."""
    manifest = Path(world) / EXAMPLES_MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"no {EXAMPLES_MANIFEST} in {world}: not a tiny-world folder")
    written, spoken = {}, {}
    for _, sample in read_manifest(manifest):
        qa_id, _, form = str(sample.id).rpartition("-")
        if form == "text" and sample.images:
            written[qa_id] = sample
        elif form == "speech" and sample.audios:
            spoken[qa_id] = sample
    by_kind: dict[str, list[DemoExample]] = {}
    for qa_id, sample in written.items():
        conversation = sample_conversation(sample)
        user = next(m for m in conversation.messages if m.role == "user")
        question = "".join(p.text for p in user.parts if isinstance(p, Text)).strip()
        voice = sample_conversation(spoken[qa_id]) if qa_id in spoken else None
        system = next((m.tagged() for m in voice.messages if m.role == "system"), None) if voice else None
        example = DemoExample(qa_id, _kind(question), question, conversation.messages[-1].tagged(),
                              Path(conversation.media("image")[0]),
                              Path(voice.media("audio")[0]) if voice else None, system)
        by_kind.setdefault(example.kind, []).append(example)
    examples: list[DemoExample] = []
    queues = [by_kind[kind] for kind in sorted(by_kind)]
    while len(examples) < limit and any(queues):
        for queue in queues:
            if queue and len(examples) < limit:
                examples.append(queue.pop(0))
    return examples
