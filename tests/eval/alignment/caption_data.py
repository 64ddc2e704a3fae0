"""Small image + caption (+ spoken caption) manifests written by the alignment tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

COLOURS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle", "star")


def write_caption_manifest(root: Path, count: int, audio: bool = True, name: str = "manifest.jsonl") -> Path:
    """`count` samples: a 56 x 56 (or 84 x 56) random-colour image, a caption, a sine tone of a
    sample-specific pitch and length as its "spoken caption"; returns the manifest path."""
    rng = np.random.default_rng(count)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "speech").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        height = 56 if i % 3 else 84  # mixed image sizes: batches hold different token counts
        pixels = np.clip(rng.normal(rng.integers(0, 255, 3), 30, (height, 56, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"images/{i}.png")
        line = {"messages": [{"role": "user", "content": "<image><audio>" if audio else "<image>"},
                             {"role": "assistant", "content": f"a {COLOURS[i % 4]} {SHAPES[i // 4 % 4]}"}],
                "images": [f"images/{i}.png"]}
        if audio:
            t = np.arange(int(16000 * (0.3 + 0.1 * (i % 5)))) / 16000
            sf.write(root / f"speech/{i}.wav", (0.3 * np.sin(2 * np.pi * (180 + 40 * i) * t)).astype(np.float32), 16000)
            line["audios"] = [f"speech/{i}.wav"]
        lines.append(line)
    return write_lines(root / name, lines)


def write_lines(path: Path, lines: list[dict]) -> Path:
    """Write dicts as JSONL lines."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path
