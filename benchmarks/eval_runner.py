"""Throughput of `nexus-o eval` on the tiny preset: items a second per task, generation included.

Run: `python benchmarks/eval_runner.py [--items N] [--max-new-tokens N]`. Writes a few items per
task (tones as speech, rendered squares as images) to a temporary folder and times `run_eval` on
each task, at batch size 1 and 4 for the text tasks (the ratio is steadier than the absolute
figures on a shared machine). tts runs the tiny model with a small speech decoder and the
built-in codec (codebooks fitted here on tones, pretrained HiFi-GAN vocoder) and transcribes the
speech with Whisper tiny.en, so its figure covers text + speech generation, vocoding and ASR.
The model is random, so scores are meaningless here; only speed is measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image, ImageDraw

from nexus_o.eval.runner import run_eval
from nexus_o.bundle.loading import build_preset
from nexus_o.bundle.omni import OmniModel

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def tone(seconds: float, freq: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_benchmarks(root: Path, n: int) -> None:
    """n items for each of asr, s2tt, sqa, vqa and tts."""
    rows: dict[str, list[dict]] = {k: [] for k in ("asr", "s2tt", "sqa", "vqa", "tts")}
    for i in range(n):
        sf.write(root / f"a{i}.wav", tone(1.0 + 0.25 * (i % 4), 180 + 30 * i), 16000)
        img = Image.new("RGB", (112, 112), "white")
        ImageDraw.Draw(img).rectangle([28, 28, 84, 84], fill=COLOURS[i % len(COLOURS)])
        img.save(root / f"i{i}.png")

        def line(prompt, answer, **media):
            return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                    **media}
        digit = DIGITS[i % 10]
        rows["asr"].append(line("<audio>Transcribe this recording.", f"the digit is {digit}", audios=[f"a{i}.wav"]))
        rows["s2tt"].append(line("<audio>Translate this speech into Chinese.", "红色的方块", audios=[f"a{i}.wav"]))
        rows["sqa"].append(line("<audio>", f"{digit} | {i % 10}", audios=[f"a{i}.wav"]))
        rows["vqa"].append(line("<image>What colour is the square?", COLOURS[i % len(COLOURS)], images=[f"i{i}.png"]))
        rows["tts"].append(line(f"Read this aloud: the digit is {digit}", f"the digit is {digit}"))
    for name, lines in rows.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))


def speaking_model():
    """Tiny preset + 1-layer speech decoder + built-in codec with 4 x 64 codebooks fitted on tones."""
    from nexus_o.codecs.builtin import fit_builtin_codec

    codec = fit_builtin_codec([tone(2.0, f, 22050) for f in (150, 220, 330)], num_codebooks=4, codebook_size=64,
                              iters=3, progress=False)
    model, processor = build_preset("tiny", seed=0)
    model.add_speech_decoder({"num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64,
                              "num_codebooks": 4, "codebook_size": 67, "codec_entries": 64, "llm_hidden_size": 64,
                              "max_steps": 512})
    return OmniModel(model.eval(), processor, codec)


def timed(pair, task: str, data: Path, out: Path, batch_size: int, **kwargs) -> float:
    """Items a second of one task, from a fresh output folder (nothing cached)."""
    start = time.perf_counter()
    results = run_eval(pair, task, data, out, batch_size=batch_size, progress=False, **kwargs)
    seconds = time.perf_counter() - start
    return results["tasks"][task]["items"] / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8, help="items per task")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_benchmarks(root, args.items)
        pair = OmniModel(*build_preset("tiny", seed=0)).eval()
        run_eval(pair, "vqa", root, root / "warmup", limit=1, progress=False)  # first-call costs out of the figures
        print(f"tiny preset, {args.items} items a task, max_new_tokens={args.max_new_tokens}, "
              f"{torch.get_num_threads()} torch threads")
        print(f"{'task':6s} {'batch 1 items/s':>16s} {'batch 4 items/s':>16s} {'batch 4 / 1':>12s}")
        for task in ("asr", "s2tt", "sqa", "vqa"):
            one = timed(pair, task, root, root / f"{task}-b1", 1, max_new_tokens=args.max_new_tokens)
            four = timed(pair, task, root, root / f"{task}-b4", 4, max_new_tokens=args.max_new_tokens)
            print(f"{task:6s} {one:16.2f} {four:16.2f} {four / one:12.2f}")
        start = time.perf_counter()
        speaker = speaking_model()
        setup = time.perf_counter() - start
        rate = timed(speaker, "tts", root, root / "tts", 1, max_new_tokens=args.max_new_tokens,
                     max_speech_seconds=1.0, asr_backend="whisper-tiny.en")
        print(f"{'tts':6s} {rate:16.2f} {'(one at a time; 1 s of speech max, Whisper tiny.en ASR)':>30s}")
        print(f"tts set-up (codec fit + vocoder load + speech decoder): {setup:.1f} s")


if __name__ == "__main__":
    main()
