"""Worked example of the alignment analysis (paper section 4.2) on the tiny world, end to end on a CPU.

It builds a small image + caption + spoken-caption manifest itself (coloured shapes and digits
rendered with PIL, captions such as "a red circle", the captions spoken by espeak-ng), then runs
`run_alignment`: Table 7 (unembedding stage) and Figure 3 (per layer), for the image alone
("text-vision") and for the image with its spoken caption ("vision+audio").

    python examples/alignment_tiny_world.py --out runs/alignment_tiny_world
    python examples/alignment_tiny_world.py --model runs/quickstart/stage2 --samples 48

With --export-baseline the model's own Qwen2.5-VL part is written out as a plain Qwen2.5-VL
checkpoint and scored as the baseline: its rows must equal ours without audio.
See docs/alignment.md for how to read the outputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf
import torch

from nexus_o.synth.tiny_world.images import PLACEMENTS, ImageSpec, write_image
from nexus_o.synth.tiny_world.vocab import COLOUR_RGB, DIGIT_WORDS, SHAPES

VOICE = ("espeak", "en-us", "en")  # one speaker for every caption: only the words differ


def objects() -> list[tuple[str, str, str]]:
    """(kind, colour, label) of every drawable object: 24 coloured shapes, then 60 coloured digits."""
    return ([("shape", c, s) for s in SHAPES for c in COLOUR_RGB]
            + [("digit", c, d) for d in DIGIT_WORDS for c in COLOUR_RGB])


def build_manifest(root: Path, count: int, seed: int = 0) -> Path:
    """Render `count` images, speak their captions, write root/manifest.jsonl; return its path.

    Raises:
        BackendUnavailableError: espeak-ng is not installed (pip install 'nexus-o[speech]').
        ValueError: more samples asked for than the tiny world has objects.
    """
    from nexus_o.speech.tts import Speaker, get_tts_backend

    pool = objects()
    if not 1 <= count <= len(pool):
        raise ValueError(f"--samples must be in 1..{len(pool)} (the tiny world's distinct objects), got {count}")
    tts = get_tts_backend("espeak")  # raises BackendUnavailableError with install instructions
    speaker = Speaker(*VOICE)
    (root / "speech").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (kind, colour, label) in enumerate(pool[:count]):
        spec = ImageSpec(id=f"{i:03d}", split="align", kind=kind, colour=colour, label=label,
                         placement=i % len(PLACEMENTS), seed=seed * 10_000 + i)
        write_image(spec, root)
        caption = f"a {colour} {label}"
        wav, rate = tts.synthesize(caption, speaker)
        speech = f"speech/{spec.id}.wav"
        sf.write(root / speech, wav, rate)
        lines.append({"messages": [{"role": "user", "content": "<image><audio>"},
                                   {"role": "assistant", "content": caption}],
                      "images": [spec.path], "audios": [speech], "id": spec.id})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return manifest


def export_baseline(model: str, folder: Path) -> Path:
    """Our model's Qwen2.5-VL part as a plain Qwen2.5-VL checkpoint (the parity baseline)."""
    from nexus_o.eval.alignment.backbones import save_vl_checkpoint
    from nexus_o.bundle.loading import load_model

    omni = load_model(model)
    return save_vl_checkpoint(omni.model, omni.processor, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/alignment_tiny_world"), help="output folder")
    parser.add_argument("--model", default="tiny", help="our checkpoint folder, or the preset 'tiny'")
    parser.add_argument("--samples", type=int, default=24, help="image-caption pairs (at most 84)")
    parser.add_argument("--topk", type=int, default=5, help="neighbours per sample")
    parser.add_argument("--baseline", type=Path, default=None, help="a Qwen2.5-VL checkpoint folder")
    parser.add_argument("--export-baseline", action="store_true",
                        help="score the model's own Qwen2.5-VL part as the baseline (a parity check)")
    args = parser.parse_args()
    torch.set_flush_denormal(True)

    from nexus_o.eval.alignment.run import run_alignment

    manifest = build_manifest(args.out / "data", args.samples)
    baseline = args.baseline
    if args.export_baseline:
        baseline = export_baseline(args.model, args.out / "baseline_qwen2_5_vl")
    result = run_alignment(args.model, manifest, args.out, baseline=baseline, topk=args.topk, per_metric_plots=True)
    print(result.table7.read_text(encoding="utf-8"))
    means = result.scores["embedding_mean"]
    for layer_pos, layer in enumerate(result.scores["layers"]):
        row = ", ".join(f"{key} {values[layer_pos]:.4f}" for key, values in means.items())
        print(f"layer {layer}: {row}")
    print(f"wrote {result.scores_json}, {result.table7}, {result.plots[0]} (+ {len(result.plots) - 1} per metric)")


if __name__ == "__main__":
    main()
