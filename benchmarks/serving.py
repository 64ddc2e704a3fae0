"""Serving benchmark: the tiny preset behind the OpenAI-compatible server, on CPU, over loopback.

Prints time to first text token, time to first audio chunk, the real-time factor of spoken
replies (wall time / audio seconds; below 1 is faster than real time) and requests a second at
1 and 8 concurrent clients, the 8 both with text requests batched (the default, `max_batch` 8)
and one at a time (`max_batch` 1). The tiny preset has random weights, so every reply runs to its
token and speech caps: the figures measure the serving path, not answer quality. Where the
tiny preset has no speech output yet, a toy speech decoder and toy codec are attached (as the
serve tests do).

    python benchmarks/serving.py [--requests 24] [--max-tokens 24] [--speech-seconds 2]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from tqdm import tqdm


def speaking_tiny():
    """(bundle, origin): the tiny preset as `load_model` gives it, with speech output (a random
    1-layer speech decoder and the built-in codec shipped with the package)."""
    from nexus_o.bundle.loading import load_model

    return load_model("tiny").eval(), "tiny preset: random speech decoder + shipped built-in codec"


def first_piece_seconds(client, model: str, speak: bool, max_tokens: int) -> float:
    """Seconds from sending a streamed request to its first text (or audio) piece."""
    extra = {"modalities": ["text", "audio"], "audio": {"voice": "default", "format": "pcm16"}} if speak else {}
    start = time.perf_counter()
    for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}],
                                                stream=True, max_tokens=max_tokens, **extra):
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is None:
            continue
        if (speak and delta.audio is not None and delta.audio.data) or (not speak and delta.content):
            return time.perf_counter() - start
    raise RuntimeError("the stream ended without the piece asked for")


def spoken_rtf(client, model: str, max_tokens: int) -> tuple[float, float]:
    """(wall seconds, audio seconds) of one whole spoken reply (pcm16: 24 kHz, 2 bytes a sample)."""
    start = time.perf_counter()
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}],
                                           max_tokens=max_tokens, modalities=["text", "audio"],
                                           audio={"voice": "default", "format": "pcm16"})
    wall = time.perf_counter() - start
    return wall, len(base64.b64decode(reply.choices[0].message.audio.data)) / 2 / 24_000


def throughput(client, model: str, clients: int, requests: int, max_tokens: int) -> float:
    """Requests a second with `clients` concurrent callers sending `requests` text requests."""
    def one(i):
        return client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"Question {i}?"}],
                                              max_tokens=max_tokens)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        replies = list(tqdm(pool.map(one, range(requests)), total=requests, desc=f"{clients} client(s)", leave=False))
    elapsed = time.perf_counter() - start
    if len({r.id for r in replies}) != requests:
        raise RuntimeError("some replies were lost or duplicated")
    return requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24, help="Requests per throughput run.")
    parser.add_argument("--max-tokens", type=int, default=24, help="Reply tokens (the random model uses them all).")
    parser.add_argument("--speech-seconds", type=float, default=2.0, help="Spoken reply length cap.")
    parser.add_argument("--repeats", type=int, default=5, help="Repeats of each latency measurement.")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    import openai

    from nexus_o.serve.app import create_app
    from nexus_o.serve.server import BackgroundServer
    from nexus_o.serve.settings import ServeSettings

    omni, speech = speaking_tiny()
    settings = ServeSettings(model_name="tiny", max_tokens=args.max_tokens, max_speech_seconds=args.speech_seconds,
                             max_queue=64, request_timeout=600)
    print(f"tiny preset on CPU ({torch.get_num_threads()} torch threads); speech: {speech}; "
          f"codec {omni.codec.sample_rate} Hz; replies of {args.max_tokens} tokens, speech capped at "
          f"{args.speech_seconds:g} s")
    with BackgroundServer(create_app(omni, settings)) as live:
        client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=600)
        first_piece_seconds(client, "tiny", True, args.max_tokens)  # warm-up
        ttft = [first_piece_seconds(client, "tiny", False, args.max_tokens) for _ in range(args.repeats)]
        ttfa = [first_piece_seconds(client, "tiny", True, args.max_tokens) for _ in range(args.repeats)]
        spoken = [spoken_rtf(client, "tiny", args.max_tokens) for _ in range(args.repeats)]
        rps = {n: throughput(client, "tiny", n, args.requests, args.max_tokens) for n in (1, 8)}
    with BackgroundServer(create_app(omni, settings.model_copy(update={"max_batch": 1}))) as live:
        client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=600)
        one_at_a_time = throughput(client, "tiny", 8, args.requests, args.max_tokens)
    rtf = [wall / audio for wall, audio in spoken]
    for name, values in (("time to first text token ", ttft), ("time to first audio chunk", ttfa)):
        print(f"{name}  median {1000 * statistics.median(values):7.1f} ms  (min {1000 * min(values):.1f})")
    audio_s, wall_s = statistics.median(a for _, a in spoken), statistics.median(w for w, _ in spoken)
    print(f"spoken reply RTF           median {statistics.median(rtf):7.3f}     "
          f"({audio_s:.2f} s of audio in {wall_s:.2f} s)")
    print(f"requests/s, 1 client       {rps[1]:7.2f}")
    print(f"requests/s, 8 clients      {rps[8]:7.2f}     (x{rps[8] / rps[1]:.2f} of 1 client: text requests "
          f"that wait together decode as one batch)")
    print(f"requests/s, 8 clients, one at a time (max_batch 1) {one_at_a_time:7.2f}     "
          f"(batching: x{rps[8] / one_at_a_time:.2f})")


if __name__ == "__main__":
    main()
