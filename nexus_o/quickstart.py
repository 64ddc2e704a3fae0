"""The main job on the tiny world: `nexus-o quickstart`.

Today it builds the tiny model and answers one mixed image + audio + text prompt; the data,
codec, three training stages and evaluation join as steps as they land (see the README).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw


def _sample_prompt(out: Path) -> dict:
    """A red square on white and a short audio clip, written to `out`; the manifest-shaped sample."""
    img = Image.new("RGB", (112, 112), "white")
    ImageDraw.Draw(img).rectangle([28, 28, 84, 84], fill="red")
    img.save(out / "prompt.png")
    t = np.arange(16000) / 16000
    sf.write(out / "prompt.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return {"messages": [{"role": "user", "content": "<image><audio>What shape is in the picture?"}],
            "images": ["prompt.png"], "audios": ["prompt.wav"]}


def run_quickstart(out_dir: Path, seed: int = 0) -> dict:
    """Run the pipeline into `out_dir`; returns (and writes) the report."""
    from rich.console import Console

    from nexus_o.inference.text import generate_text
    from nexus_o.models.loading import build_preset

    console = Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    console.print("[bold]1/2[/] building the tiny model")
    model, processor = build_preset("tiny", seed=seed)
    model.save_pretrained(out_dir / "checkpoint")
    processor.save_pretrained(out_dir / "checkpoint")
    console.print("[bold]2/2[/] answering an image + audio + text prompt")
    sample = _sample_prompt(out_dir)
    answer = generate_text(model.eval(), processor, sample, max_new_tokens=16, base_dir=out_dir)[0]
    report = {"answer_text": answer, "checkpoint": str(out_dir / "checkpoint"),
              "prompt": sample, "minutes": (time.perf_counter() - start) / 60}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    console.print(f"answer: {answer!r}\nreport: {out_dir / 'report.json'}")
    return report
