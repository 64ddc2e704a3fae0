"""Speed and ASR-verified quality of the TTS backends of the synthesis pipeline.

For each backend (espeak-ng English, espeak-ng Mandarin `cmn`, piper joe) a few speakers from its
seeded pool speak 10 sentences each. Printed per speaker: synthesis throughput (sentences a
second), real-time factor (synthesis seconds / audio seconds, CPU time of this process), and the
share of samples that pass the ASR round trip (English: Whisper tiny.en, WER <= 0.2; Mandarin:
multilingual Whisper base, CER <= 0.2), with the mean error rate.

    python benchmarks/synth_tts.py [--speakers 3] [--max-error 0.2]
"""

from __future__ import annotations

import argparse
import os
import time
from statistics import mean

import torch
from tqdm import tqdm

from nexus_o.speech.asr import get_asr_backend
from nexus_o.speech.tts import SynthesisError, get_tts_backend, speaker_pool
from nexus_o.synth.verify import ASRVerifier

EN_SENTENCES = (
    "What colour is the square?",
    "The red circle is next to the blue triangle.",
    "There are three green squares in the picture.",
    "Could you tell me how many circles there are?",
    "The small yellow star is above the large square.",
    "I think the answer is seven.",
    "Please count the shapes on the left side.",
    "The blue square is bigger than the red one.",
    "Hey, which shape is at the bottom of the picture?",
    "Two purple circles are hiding behind the triangle.",
)
ZH_SENTENCES = (
    "正方形是什么颜色？",
    "红色的圆在蓝色三角形的旁边。",
    "图片里有三个绿色的正方形。",
    "你能告诉我有几个圆吗？",
    "小星星在大正方形的上面。",
    "我觉得答案是七。",
    "请数一数左边的图形。",
    "蓝色的正方形比红色的大。",
    "图片最下面是什么形状？",
    "两个紫色的圆藏在三角形后面。",
)


def run_speaker(tts, speaker, sentences, verifier) -> dict:
    """Synthesise and verify `sentences` with one speaker; returns timings and pass counts."""
    synth_cpu = audio_seconds = 0.0
    scores, passed, failed = [], 0, 0
    for text in sentences:
        start = time.process_time()
        try:
            wav, rate = tts.synthesize(text, speaker)
        except SynthesisError:
            failed += 1
            continue
        synth_cpu += time.process_time() - start
        audio_seconds += wav.size / rate
        result = verifier.check(wav, rate, text, language=speaker.language)
        scores.append(result.score)
        passed += result.passed
    return {
        "speaker": speaker.name,
        "rate": len(sentences) / synth_cpu if synth_cpu else float("nan"),
        "rtf": synth_cpu / audio_seconds if audio_seconds else float("nan"),
        "pass": passed / len(sentences),
        "error": mean(scores) if scores else float("nan"),
        "metric": "CER" if speaker.language == "zh" else "WER",
        "failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=3, help="speakers per backend and language")
    parser.add_argument("--max-error", type=float, default=0.2, help="WER/CER threshold of the round trip")
    args = parser.parse_args()
    torch.set_flush_denormal(True)

    espeak, piper = get_tts_backend("espeak"), get_tts_backend("piper")
    verifier = ASRVerifier(
        {
            "en": get_asr_backend("whisper-tiny.en", cpu_threads=2),
            "zh": get_asr_backend("whisper-base", cpu_threads=2),
        },
        max_wer=args.max_error,
        max_cer=args.max_error,
    )
    jobs = [
        ("espeak en", espeak, "en", EN_SENTENCES),
        ("espeak cmn", espeak, "zh", ZH_SENTENCES),
        ("piper joe", piper, "en", EN_SENTENCES),
    ]
    rows = []
    total = len(jobs) * args.speakers
    with tqdm(total=total, desc="speakers") as bar:
        for label, tts, language, sentences in jobs:
            for speaker in speaker_pool(language, args.speakers, seed=0, backend=tts):
                rows.append((label, run_speaker(tts, speaker, sentences, verifier)))
                bar.update()

    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; RTF and rate on CPU time")
    print(f"{'backend':<11} {'speaker':<42} {'sent/s':>7} {'RTF':>7} {'pass':>5} {'mean err':>9}")
    for label, row in rows:
        print(
            f"{label:<11} {row['speaker']:<42} {row['rate']:>7.1f} {row['rtf']:>7.3f} "
            f"{100 * row['pass']:>4.0f}% {row['metric']} {row['error']:.2f}"
            + (f"  ({row['failed']} failed)" if row["failed"] else "")
        )
    print("\nper backend:")
    for label, *_ in jobs:
        mine = [row for name, row in rows if name == label]
        print(
            f"  {label:<11} RTF {mean(r['rtf'] for r in mine):.3f}  {mean(r['rate'] for r in mine):.1f} sentences/s  "
            f"pass {100 * mean(r['pass'] for r in mine):.0f}%"
        )


if __name__ == "__main__":
    main()
