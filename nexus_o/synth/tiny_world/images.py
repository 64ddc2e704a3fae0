"""Rendering of tiny-world images with PIL: one coloured shape or digit on a noisy white-ish canvas.

An image is fully described by an `ImageSpec` (object, placement, noise seed), so the same spec
always gives the same pixels and the same PNG bytes. Placements are a small grid of centres and
sizes; held-out images reuse objects seen in training at placements not used for them there.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nexus_o.synth.tiny_world.vocab import COLOUR_RGB
from nexus_o.synth.tiny_world.vocab import DIGIT_WORDS

# Centres (fractions of the side) and sizes (object radius as a fraction of the side).
CENTRES = ((0.5, 0.5), (0.38, 0.38), (0.62, 0.38), (0.38, 0.62), (0.62, 0.62))
RADII = (0.2, 0.25, 0.3)
PLACEMENTS = tuple((c, r) for c in CENTRES for r in RADII)


@dataclass(frozen=True)
class ImageSpec:
    """One image: `kind` "shape" or "digit", its colour and label (shape name or digit word)."""

    id: str
    split: str
    kind: str
    colour: str
    label: str
    placement: int  # index into PLACEMENTS
    seed: int

    @property
    def path(self) -> str:
        """Path relative to the world folder."""
        return f"images/{self.split}/{self.id}.png"


def _polygon(
    cx: float, cy: float, radius: float, points: int, inner: float | None
) -> list[tuple[float, float]]:
    """Regular polygon (or star when `inner` is a radius ratio) pointing up."""
    corners = points * (2 if inner else 1)
    out = []
    for k in range(corners):
        r = radius * (inner if inner and k % 2 else 1.0)
        angle = -math.pi / 2 + 2 * math.pi * k / corners
        out.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return out


def render(spec: ImageSpec, size: int = 112) -> Image.Image:
    """The RGB image [size, size] of `spec`: background ~240 +- noise, the object in its colour."""
    rng = np.random.default_rng(spec.seed)
    background = tuple(int(v) for v in rng.integers(232, 252, size=3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    (fx, fy), fr = PLACEMENTS[spec.placement]
    cx, cy, r = fx * size, fy * size, fr * size
    colour = tuple(int(np.clip(v + rng.integers(-12, 13), 0, 255)) for v in COLOUR_RGB[spec.colour])
    if spec.kind == "digit":
        font = ImageFont.load_default(size=round(2.4 * r))
        draw.text(
            (cx, cy),
            str(DIGIT_WORDS.index(spec.label)),
            fill=colour,
            font=font,
            anchor="mm",
            stroke_width=max(1, round(r / 12)),
            stroke_fill=colour,
        )
    elif spec.label == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif spec.label == "square":
        half = 0.8 * r
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=colour)
    elif spec.label == "triangle":
        draw.polygon(_polygon(cx, cy + 0.15 * r, 1.1 * r, 3, None), fill=colour)
    elif spec.label == "star":
        draw.polygon(_polygon(cx, cy, 1.1 * r, 5, 0.45), fill=colour)
    else:
        raise ValueError(f"image {spec.id}: unknown shape {spec.label!r}")
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, 3.0, (size, size, 3))
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def write_image(spec: ImageSpec, root: Path, size: int = 112) -> None:
    """Render `spec` to root/spec.path (PNG), atomically: a killed run never leaves half a file."""
    path = root / spec.path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    render(spec, size).save(tmp, format="PNG")
    os.replace(tmp, path)
