"""Converted Whisper (transformers) vs the CTranslate2 original, for the packaged tiny.en and base.

For each model: conversion time (encoder only, and the whole model), encoder output parity on the
log-mel features of a piper sentence (max / mean abs difference, cosine) against ctranslate2 at
float32 compute and at int8 compute (what faster-whisper users often run), the encoder time ratio,
and greedy decoding with the same prompt in both (token ids equal or not, and the transcript).

Run: python benchmarks/ct2_whisper_parity.py   (a minute or two on 2 CPU cores)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import ctranslate2
import numpy as np
import soxr
import torch
from tqdm import tqdm
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizer

from nexus_o.bundle.from_components import load_whisper_encoder
from nexus_o.bundle.ct2_whisper import convert_ct2_whisper, ct2_source, whisper_base_ct2_dir

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def speech() -> np.ndarray:
    """The sentence spoken by piper's joe voice, 16 kHz float32."""
    from piper import PiperVoice

    from nexus_o.speech.tts.piper import joe_voice_path

    voice = PiperVoice.load(joe_voice_path())
    wav = np.concatenate([c.audio_float_array for c in voice.synthesize(SENTENCE)])
    return soxr.resample(wav, voice.config.sample_rate, 16000).astype(np.float32)


def compare(got: np.ndarray, want: np.ndarray) -> str:
    got, want = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    diff = np.abs(got - want)
    cosine = float(np.dot(got, want) / (np.linalg.norm(got) * np.linalg.norm(want)))
    return (f"max|d| {diff.max():.2e}  mean|d| {diff.mean():.2e}  (ref: max {np.abs(want).max():.1f}, "
            f"mean {np.abs(want).mean():.3f})  cosine {cosine:.8f}")


def greedy(model: WhisperForConditionalGeneration, features: np.ndarray, prompt: list[int], steps: int) -> list[int]:
    """Argmax decoding from `prompt` for at most `steps` tokens or until <|endoftext|>."""
    ids = torch.tensor([prompt])
    with torch.no_grad():
        memory = model.model.encoder(torch.from_numpy(features)).last_hidden_state
        for _ in range(steps):
            token = int(model(encoder_outputs=(memory,), decoder_input_ids=ids).logits[0, -1].argmax())
            if token == model.config.eos_token_id:
                break
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return ids[0, len(prompt):].tolist()


def run(name: str, runtime_dir: Path, prompt_tokens: list[str], features: np.ndarray, work: Path) -> None:
    source = ct2_source(name)
    start = time.perf_counter()
    encoder_dir = convert_ct2_whisper(source, work / f"{name}-encoder")
    t_encoder = time.perf_counter() - start
    start = time.perf_counter()
    full_dir = convert_ct2_whisper(source, work / f"{name}-full", encoder_only=False)
    t_full = time.perf_counter() - start
    print(f"\n{name}: conversion {t_encoder:.2f} s (encoder), {t_full:.2f} s (whole model)")

    encoder = load_whisper_encoder(encoder_dir).eval()
    start = time.perf_counter()
    with torch.no_grad():
        ours = encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    t_ours = time.perf_counter() - start
    storage = ctranslate2.StorageView.from_array(features)
    for compute_type in ("float32", "int8"):
        runtime = ctranslate2.models.Whisper(str(runtime_dir), device="cpu", compute_type=compute_type, intra_threads=2)
        start = time.perf_counter()
        reference = np.array(runtime.encode(storage, to_cpu=True))
        t_ref = time.perf_counter() - start
        print(f"  encoder vs ct2 {compute_type:7s}: {compare(ours, reference)}  "
              f"encoder time ours/ct2 {t_ours / t_ref:.2f}x")

    model = WhisperForConditionalGeneration.from_pretrained(full_dir).eval()
    runtime = ctranslate2.models.Whisper(str(runtime_dir), device="cpu", compute_type="float32", intra_threads=2)
    tokenizer = WhisperTokenizer.from_pretrained(full_dir)
    prompt = tokenizer.convert_tokens_to_ids(prompt_tokens)
    want = runtime.generate(storage, [prompt], beam_size=1, suppress_blank=False, suppress_tokens=[],
                            max_length=64)[0].sequences_ids[0]
    got = greedy(model, features, prompt, steps=64)
    print(f"  greedy decoding, prompt {''.join(prompt_tokens)}: token ids equal: {got == list(want)} "
          f"({len(got)} tokens)")
    print(f"    ours: {tokenizer.decode(got).strip()!r}")
    print(f"    ct2:  {tokenizer.decode(want).strip()!r}")


def main() -> None:
    torch.set_flush_denormal(True)
    torch.set_num_threads(2)
    features = WhisperFeatureExtractor(feature_size=80)(speech(), sampling_rate=16000,
                                                        return_tensors="np").input_features
    cases = [
        ("whisper-tiny.en", lambda: ct2_source("whisper-tiny.en"),
         ["<|startoftranscript|>", "<|notimestamps|>"]),
        ("whisper-base", whisper_base_ct2_dir,
         ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]),
    ]
    with tempfile.TemporaryDirectory() as work:
        for name, runtime_dir, prompt in tqdm(cases, desc="models"):
            run(name, Path(runtime_dir()), prompt, features, Path(work))


if __name__ == "__main__":
    main()
