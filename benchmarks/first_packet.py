"""Time to the first packet of speech: how long a spoken reply takes to start, and why.

Random weights (the 7B preset is built on the device in a second); the reply length is forced
(`--reply-tokens`), and so is the speech length (4 chunks). The prompt is what the
GPU issue measured: 64 text tokens, one 448x448 image and 10 s of audio (`--small` shrinks it).

Prints each term of the first packet:
- prefill: the prompt through encoders and LLM, up to the first reply token;
- reply tokens before the first speech step (the decoder's look-ahead; all of them when the
  decoder speaks text-then-speech) and what an LLM step costs;
- decoder steps to the first chunk (chunk_frames + K - 1, the delay pattern) and what a step costs;
- the codec turning the first chunk into audio;
then the measured first audio and text-done times (median of `--runs` after a warm-up), the same
with the decoder in the paper's text-then-speech mode (same weights), and decoder steps/s at
batch 1 and 8 with the real-time factor (steps/s over the codec's frame rate).

Run: `python benchmarks/first_packet.py [--device cpu|cuda] [--preset tiny|nexus-o-7b]
[--reply-tokens 48] [--json] [--decoder-only]`. With --json the last line is one JSON object
(first_audio_ms, text_done_ms, reply_tokens, decoder_steps_per_s_b1, decoder_steps_per_s_b8,
...). --decoder-only measures only decoder steps/s (the 7B decoder on a CPU without the 7B LLM).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import contextmanager

import torch
from synthetic_inputs import StubProcessor, default_dtype, synthetic_inputs  # benchmarks/ (the script's folder)
from transformers import BatchFeature

from nexus_o.bundle.loading import default_codec, speech_decoder_for
from nexus_o.bundle.presets import preset_config
from nexus_o.inference.chat import OmniChat, PreparedPrompt
from nexus_o.models.modeling import NexusOForConditionalGeneration
from nexus_o.models.sampling import SamplingConfig
from nexus_o.models.speech_decoder import SpeechDecoder


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(args, device: torch.device, dtype: torch.dtype):
    """(model, codec) of the preset, random weights, on the device."""
    torch.manual_seed(0)
    if args.preset == "tiny":
        codec = default_codec()
        config = preset_config("tiny", speech_decoder_config=speech_decoder_for(codec, 64))
    else:
        from nexus_o.codecs.firefly import FireflyCodec
        codec = FireflyCodec.random_init(device=str(device))
        config = preset_config(args.preset)
    with default_dtype(dtype), device:  # every weight made on the device, in the model dtype
        model = NexusOForConditionalGeneration(config)
    return model.eval().requires_grad_(False), codec.to(device)


def one_reply(chat: OmniChat, prompt: PreparedPrompt, device) -> dict:
    """Stream one spoken reply; times (ms from the request) of its events."""
    sync(device)
    start = time.perf_counter()
    first_audio = first_text = last_text = None
    pieces_before_audio = pieces = audio_chunks = 0
    for chunk in chat.chat(prompt, modalities=["text", "audio"], stream=True):
        now = 1e3 * (time.perf_counter() - start)
        if chunk.text is not None:
            pieces += 1
            first_text = first_text if first_text is not None else now
            last_text = now
        elif chunk.audio is not None:
            audio_chunks += 1
            if first_audio is None:
                first_audio, pieces_before_audio = now, pieces
    return {"first_audio_ms": first_audio, "first_text_ms": first_text, "text_done_ms": last_text,
            "reply_tokens": pieces, "tokens_before_first_audio": pieces_before_audio, "audio_chunks": audio_chunks,
            "total_ms": 1e3 * (time.perf_counter() - start)}


def median_reply(chat, prompt, device, runs: int) -> dict:
    one_reply(chat, prompt, device)  # warm-up: kernels, CUDA graph, allocator
    results = [one_reply(chat, prompt, device) for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def decoder_steps_per_s(decoder: SpeechDecoder, batch: int, frames: int, device) -> float:
    """Steps/s of the decoder over `frames` frames for `batch` replies of 48 tokens (warm, greedy)."""
    gen_args = dict(max_tokens=48, max_frames=frames + 8, min_frames=frames + 8, sampling=SamplingConfig(greedy=True))
    dtype = decoder.llm_proj.weight.dtype
    states = torch.randn(batch, 48, decoder.llm_hidden_size, device=device, dtype=dtype)
    mask = torch.ones(batch, 48, dtype=torch.bool, device=device)
    with torch.inference_mode():
        gen = decoder.start_generation(batch, **gen_args)
        gen.add_all(states, mask)
        for _ in range(4):  # warm-up (and the CUDA graph capture)
            gen.step()
        sync(device)
        start = time.perf_counter()
        for _ in range(frames):
            gen.step()
        gen.end_frames.tolist()  # one sync at the end
        return frames / (time.perf_counter() - start)


def prefill_ms(chat: OmniChat, prompt: PreparedPrompt, device, runs: int) -> float:
    times = []
    for _ in range(runs + 1):
        sync(device)
        start = time.perf_counter()
        steps = chat.replies.steps(prompt.inputs, 1, conditions=False)
        next(steps)  # prefill + reading the first token
        steps.close()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times[1:])


def text_only_ms(chat, prompt, device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in chat.chat(prompt, modalities=["text"], stream=True):
        pass
    return 1e3 * (time.perf_counter() - start)


def codec_chunk_ms(codec, decoder, chunk_frames: int, device, runs: int) -> float:
    k, entries = decoder.vocab.num_codebooks, decoder.vocab.codec_entries
    codes = torch.randint(0, entries, (1, k, chunk_frames), device=device)
    times = []
    with torch.inference_mode():
        for _ in range(runs + 1):
            sync(device)
            start = time.perf_counter()
            codec.decode_incremental(codes, None)[0].cpu()
            times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times[1:])


@contextmanager
def text_then_speech(decoder: SpeechDecoder):
    """The same weights in the paper's mode: every step waits for the whole text."""
    saved = decoder.lookahead, decoder.text_end
    decoder.lookahead, decoder.text_end = None, None
    try:
        yield
    finally:
        decoder.lookahead, decoder.text_end = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "nexus-o-7b"])
    parser.add_argument("--reply-tokens", type=int, default=48)
    parser.add_argument("--chunk-frames", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dtype", default=None, help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--small", action="store_true", help="a smaller prompt: 16 text tokens, 112 px, 1 s audio")
    parser.add_argument("--frames", type=int, default=None, help="frames timed for decoder steps/s")
    parser.add_argument("--decoder-only", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the LLM decode step (CUDA)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.text_tokens, args.image_size, args.audio_seconds = (16, 112, 1.0) if args.small else (64, 448, 10.0)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    frames = args.frames or (256 if device.type == "cuda" else 64)
    out = {"device": str(device), "preset": args.preset, "dtype": str(dtype), "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}

    if args.decoder_only:
        config = preset_config(args.preset).speech_decoder_config if args.preset != "tiny" else None
        if config is None:
            codec = default_codec()
            config = preset_config("tiny", speech_decoder_config=speech_decoder_for(codec, 64)).speech_decoder_config
        with default_dtype(dtype), device:
            decoder = SpeechDecoder.from_config(config).eval()
        model = None
        codec = default_codec() if args.preset == "tiny" else None  # its frame rate (FireFly's: 21.53)
    else:
        model, codec = build(args, device, dtype)
        decoder = model.speech_decoder
    print(f"{args.preset} on {device} ({dtype}); decoder {decoder.transformer.hidden_size} wide, "
          f"{len(decoder.transformer.layers)} layers, K={decoder.vocab.num_codebooks}, look-ahead {decoder.lookahead}")
    rate = codec.frame_rate if codec is not None else 21.53
    for batch in (1, 8):
        steps = decoder_steps_per_s(decoder, batch, frames, device)
        out[f"decoder_steps_per_s_b{batch}"] = steps
        out[f"decoder_realtime_factor_b{batch}"] = batch * rate / steps  # generation time / audio time
        print(f"decoder batch {batch}: {steps:,.0f} steps/s = {steps / rate:.1f} x real time per reply "
              f"({rate:.2f} frames/s)")
    if args.decoder_only:
        out.update(first_audio_ms=None, text_done_ms=None, reply_tokens=None)
        print(json.dumps(out) if args.json else "")
        return

    inputs, prompt_info = synthetic_inputs(model.config, text_tokens=args.text_tokens, image_size=args.image_size,
                                           audio_seconds=args.audio_seconds)
    out["prompt"] = prompt_info
    shim = StubProcessor(model.config.vl_config.text_config.eos_token_id)
    n = args.reply_tokens
    # Random weights never end their speech: hold it to 4 chunks.
    speech_frames = 4 * args.chunk_frames
    chat = OmniChat(model, shim, codec, max_new_tokens=n, min_reply_tokens=n, chunk_frames=args.chunk_frames,
                    min_speech_frames=speech_frames, max_speech_seconds=(speech_frames + 0.5) / codec.frame_rate,
                    compile_step=args.compile)
    prompt = PreparedPrompt({"messages": []}, BatchFeature(inputs), n)
    k = decoder.vocab.num_codebooks
    terms = {"prefill_ms": prefill_ms(chat, prompt, device, args.runs)}
    text_ms = statistics.median(text_only_ms(chat, prompt, device) for _ in range(2))
    terms["llm_step_ms"] = (text_ms - terms["prefill_ms"]) / max(n - 1, 1)
    terms["tokens_before_first_speech_step"] = decoder.lookahead if decoder.lookahead is not None else n
    terms["decoder_steps_to_first_chunk"] = args.chunk_frames + k - 1
    terms["decoder_step_ms"] = 1e3 / out["decoder_steps_per_s_b1"]
    terms["codec_chunk_ms"] = codec_chunk_ms(codec, decoder, args.chunk_frames, device, args.runs)
    # The loop runs up to `decoder_steps_per_token` decoder steps after each LLM step.
    llm_steps = terms["tokens_before_first_speech_step"] + max(
        0, -(-terms["decoder_steps_to_first_chunk"] // chat.decoder_steps_per_token) - 1)
    terms["estimate_ms"] = (terms["prefill_ms"] + llm_steps * terms["llm_step_ms"]
                            + terms["decoder_steps_to_first_chunk"] * terms["decoder_step_ms"] + terms["codec_chunk_ms"])
    out["terms"] = terms
    out["text_only_reply_ms"] = text_ms
    streamed = median_reply(chat, prompt, device, args.runs)
    out.update(streamed)
    with text_then_speech(decoder):
        out["text_then_speech"] = median_reply(chat, prompt, device, max(1, args.runs - 1))
    print(f"prompt: {prompt_info['length']} tokens ({prompt_info['text_tokens']} text, {prompt_info['image_tokens']} "
          f"image, {prompt_info['audio_tokens']} audio); reply forced to {n} tokens")
    print(f"  prefill                                  {terms['prefill_ms']:9.1f} ms")
    print(f"  reply tokens before the first speech step {terms['tokens_before_first_speech_step']:8d} "
          f"x {terms['llm_step_ms']:.2f} ms an LLM step")
    print(f"  decoder steps to the first chunk          {terms['decoder_steps_to_first_chunk']:8d} "
          f"x {terms['decoder_step_ms']:.2f} ms a step")
    print(f"  codec, first chunk of {args.chunk_frames} frames          {terms['codec_chunk_ms']:9.1f} ms")
    print(f"  estimate (terms + interleaved LLM steps)  {terms['estimate_ms']:9.1f} ms")
    print(f"first audio {out['first_audio_ms']:.1f} ms (after {out['tokens_before_first_audio']} text pieces); "
          f"text done {out['text_done_ms']:.1f} ms; text-only reply {text_ms:.1f} ms")
    tts = out["text_then_speech"]
    print(f"text-then-speech, same weights: first audio {tts['first_audio_ms']:.1f} ms, text done "
          f"{tts['text_done_ms']:.1f} ms")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
