"""The closed vocabulary of the tiny world: colours, shapes, digits, questions and spoken phrases.

Every answer is one word of the vocabulary ("circle", "red", "seven"), so a tiny model can be
scored by exact match. Phrases for ASR and TTS are two or three vocabulary words in a fixed
order ("red circle", "seven blue", "green star four").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COLOUR_RGB = {
    "red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 90, 210),
    "yellow": (230, 190, 20), "purple": (140, 60, 175), "orange": (245, 125, 15),
}  # fmt: skip
SHAPES = ("circle", "square", "triangle", "star")

# Question wordings per question type; the answer is the object's shape, colour or digit word.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "shape": ("What shape is this?", "Which shape do you see?", "What is the shape in the picture?"),
    "shape_colour": ("What colour is the shape?", "Which colour is the shape?", "What colour do you see?"),
    "digit": ("What digit is this?", "Which number is shown?", "What number do you see?"),
    "digit_colour": (
        "What colour is the digit?",
        "Which colour is the number?",
        "What colour is the number?",
    ),
}


@dataclass(frozen=True)
class Vocab:
    """The colours, shapes and digits a world uses (a subset of the full vocabulary for `small`)."""

    colours: tuple[str, ...]
    shapes: tuple[str, ...]
    digits: tuple[int, ...]

    def __post_init__(self) -> None:
        if unknown := [c for c in self.colours if c not in COLOUR_RGB]:
            raise ValueError(f"unknown colour(s) {unknown}; known: {sorted(COLOUR_RGB)}")
        if unknown := [s for s in self.shapes if s not in SHAPES]:
            raise ValueError(f"unknown shape(s) {unknown}; known: {list(SHAPES)}")

    @property
    def digit_words(self) -> tuple[str, ...]:
        return tuple(DIGIT_WORDS[d] for d in self.digits)

    @property
    def words(self) -> tuple[str, ...]:
        """Every answer word: colours, shapes, digit words."""
        return (*self.colours, *self.shapes, *self.digit_words)

    @property
    def objects(self) -> list[tuple[str, str, str]]:
        """(kind, colour, label) of every drawable object: coloured shapes, then coloured digits."""
        return [("shape", c, s) for c in self.colours for s in self.shapes] + [
            ("digit", c, d) for c in self.colours for d in self.digit_words
        ]

    def two_word_phrases(self) -> list[str]:
        """All "colour shape" and "digit colour" phrases, in a fixed order."""
        return [f"{c} {s}" for c in self.colours for s in self.shapes] + [
            f"{d} {c}" for d in self.digit_words for c in self.colours
        ]

    def random_phrase(self, rng: random.Random) -> str:
        """An ASR text: one word (40 %), two words (35 %) or three words (25 %) of the vocabulary."""
        roll = rng.random()
        if roll < 0.4 or not (self.shapes and self.digits):
            return rng.choice(self.words)
        colour, shape, digit = rng.choice(self.colours), rng.choice(self.shapes), rng.choice(self.digit_words)
        if roll < 0.75:
            return rng.choice((f"{colour} {shape}", f"{digit} {colour}"))
        return rng.choice((f"{colour} {shape} {digit}", f"{digit} {colour} {shape}"))


def questions_for(kind: str, colour: str, label: str) -> list[tuple[str, str]]:
    """(question type, answer) pairs asked about one object: its shape or digit, and its colour."""
    if kind == "shape":
        return [("shape", label), ("shape_colour", colour)]
    return [("digit", label), ("digit_colour", colour)]
