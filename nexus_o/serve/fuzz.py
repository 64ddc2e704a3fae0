"""Hostile requests against `POST /v1/chat/completions`: a seeded, bounded generator and a driver.

    cases = hostile_requests(300, seed=0, model="tiny")
    report = run_fuzz(server_url, cases, timeout=10.0)
    print(report.format())

`hostile_requests` mixes five kinds of malformed input, each built from a small valid request
(so that one defect is tested at a time): a field of the schema set to a wrong or extreme value
(booleans for numbers, strings for booleans, empty arrays, lone surrogates, huge numbers, ...),
at random and in a fixed list of known cases; a body that is not the JSON object it should be
(truncated, invalid UTF-8, nested 100k deep, ...); hostile media (bombs, lying headers,
unsupported encodings, random bytes, paths, remote URLs); and oversized prompts. The same seed
always gives the same cases. The valid ones ask for 2 reply tokens, so they stay cheap.

`run_fuzz` sends them one at a time and counts what came back: 2xx, 4xx (and whether each 4xx
is in OpenAI's error shape), 5xx, hangs (answers later than the server's request timeout, or
none), the slowest answer, and the resident memory before and after (the server's, when it runs
in this process).
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

SURROGATE = "\ud800"


@dataclass(frozen=True)
class HostileRequest:
    """One request: a label saying what is wrong with it, the raw body and the Content-Type."""

    name: str
    body: bytes
    content_type: str = "application/json"


def _dumps(body) -> bytes:
    # ensure_ascii keeps lone surrogates expressible: they travel as \ud800 escapes, as a client sends them
    return json.dumps(body, ensure_ascii=True).encode("ascii")


def _wav(samples: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples.astype(np.float32), rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _tone(seconds: float = 0.3, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * 220 * t)


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def _png_bomb_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (its pixel data is a few bytes)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _lying_wav() -> bytes:
    data = bytearray(_wav(_tone()))
    at = data.find(b"data")
    data[at + 4:at + 8] = struct.pack("<I", 0xFFFFFFF0)
    return bytes(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def media_cases() -> list[tuple[str, dict]]:
    """(label, content part) pairs of hostile media."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    image = lambda url: {"type": "image_url", "image_url": {"url": url}}  # noqa: E731
    audio = lambda data, fmt="wav": {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}  # noqa: E731
    video = lambda url: {"type": "video_url", "video_url": {"url": url}}  # noqa: E731
    return [
        ("image: 30000x30000 PNG header (bomb)",
         image("data:image/png;base64," + _b64(_png_bomb_header(30000, 30000)))),
        ("image: truncated PNG", image("data:image/png;base64," + _b64(_png(40, 30)[:60]))),
        ("image: random bytes", image("data:image/png;base64," + _b64(noise))),
        ("image: 1x300 PNG (aspect ratio)", image("data:image/png;base64," + _b64(_png(1, 300)))),
        ("image: 1x1 PNG", image("data:image/png;base64," + _b64(_png(1, 1)))),
        ("image: invalid base64", image("data:image/png;base64,@@@not-base64@@@")),
        ("image: data URL without base64", image("data:image/png,rawbytes")),
        ("image: remote URL", image("https://example.com/cat.png")),
        ("image: local path", image("file:///etc/passwd")),
        ("image: empty URL", image("")),
        ("image: text/html data URL", image("data:text/html;base64," + _b64(b"<html></html>"))),
        ("audio: 1-sample WAV", audio(_b64(_wav(np.array([0.1]))))),
        ("audio: WAV header claims 0xFFFFFFF0 data bytes", audio(_b64(_lying_wav()))),
        ("audio: A-law WAV", audio(_b64(_wav(_tone(), 8000, "ALAW")))),
        ("audio: mu-law WAV", audio(_b64(_wav(_tone(), 8000, "ULAW")))),
        ("audio: IMA ADPCM WAV", audio(_b64(_wav(_tone(), 8000, "IMA_ADPCM")))),
        ("audio: random bytes as wav", audio(_b64(noise))),
        ("audio: random bytes as mp3", audio(_b64(noise), "mp3")),
        ("audio: random bytes as flac", audio(_b64(noise), "flac")),
        ("audio: odd-length pcm16", audio(_b64(b"\x01\x02\x03"), "pcm16")),
        ("audio: 1-sample pcm16", audio(_b64(b"\x01\x02"), "pcm16")),
        ("audio: WAV declared as flac", audio(_b64(_wav(_tone())), "flac")),
        ("audio: WAV at 1 Hz", audio(_b64(_wav(_tone(0.01), 1)))),
        ("audio: empty data", audio("")),
        ("audio: NaN float WAV", audio(_b64(_wav(np.full(4000, np.nan), 16000, "FLOAT")))),
        ("video: random bytes", video("data:video/mp4;base64," + _b64(noise))),
        ("video: MP4 magic then garbage", video("data:video/mp4;base64," + _b64(b"\0\0\0\x18ftypmp42" + noise))),
        ("video: remote URL", video("http://example.com/v.mp4")),
    ]


# Wrong or extreme JSON values for any field; the surrogate and deep nesting are the nastiest.
VALUES = [True, False, None, 0, -1, 1.5, 10 ** 30, -(10 ** 30), 1e308, "", "yes", "1", SURROGATE,
          "\u0000", "x" * 10_000, [], [None], [[]], {}, {"a": 1}, [SURROGATE], {"": SURROGATE}]

FIELDS = [
    ("model",), ("messages",), ("messages", 0), ("messages", 0, "role"), ("messages", 0, "content"),
    ("messages", 0, "content", 0), ("messages", 0, "content", 0, "type"), ("messages", 0, "content", 0, "text"),
    ("messages", 0, "name"), ("modalities",), ("audio",), ("audio", "voice"), ("audio", "format"), ("stream",),
    ("stream_options",), ("stream_options", "include_usage"), ("max_tokens",), ("max_completion_tokens",), ("n",),
    ("temperature",), ("top_p",), ("seed",), ("stop",), ("presence_penalty",), ("frequency_penalty",), ("user",),
    ("metadata",), ("store",), ("tools",), (SURROGATE,),
]


def base_request(model: str, stream: bool = False) -> dict:
    """A small valid request (2 reply tokens); streamed ones ask for the usage chunk too."""
    body = {"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "max_tokens": 2, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _set(body: dict, path: tuple, value) -> dict:
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


def _raw_cases(model: str) -> list[HostileRequest]:
    valid = _dumps(base_request(model))
    depth = 100_000
    return [
        HostileRequest("raw: empty body", b""),
        HostileRequest("raw: truncated JSON", valid[: len(valid) // 2]),
        HostileRequest("raw: not JSON", b"\x00\xff\xfe garbage"),
        HostileRequest("raw: invalid UTF-8 in a string", valid.replace(b'"hi"', b'"\xff\xfe"')),
        HostileRequest("raw: JSON array", b"[1, 2, 3]"),
        HostileRequest("raw: JSON string", b'"hello"'),
        HostileRequest("raw: JSON null", b"null"),
        HostileRequest("raw: nested 100k deep", b"[" * depth + b"]" * depth),
        HostileRequest("raw: object nested 100k deep", b'{"model": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"),
        HostileRequest("raw: huge number literal", valid.replace(b'"max_tokens": 2', b'"max_tokens": ' + b"9" * 5000)),
        HostileRequest("raw: NaN literal", valid.replace(b'"max_tokens": 2', b'"temperature": NaN, "max_tokens": 2')),
        HostileRequest("raw: Infinity literal",
                       valid.replace(b'"max_tokens": 2', b'"top_p": Infinity, "max_tokens": 2')),
        HostileRequest("raw: duplicate keys", valid[:-1] + b', "model": "other"}'),
        HostileRequest("raw: UTF-8 BOM", b"\xef\xbb\xbf" + valid),
        HostileRequest("raw: text/plain content type", valid, "text/plain"),
        HostileRequest("raw: form content type", b"model=tiny", "application/x-www-form-urlencoded"),
    ]


def _length_cases(model: str) -> list[HostileRequest]:
    big = base_request(model)
    big["messages"][0]["content"][0]["text"] = "hello " * 174_763  # about 1 MB
    many = base_request(model)
    many["messages"] = [{"role": "user", "content": "hi"}] * 20_000
    long_reply = base_request(model)
    long_reply["max_tokens"] = 10 ** 9
    return [HostileRequest("length: 1 MB text", _dumps(big)), HostileRequest("length: 20000 messages", _dumps(many)),
            HostileRequest("length: max_tokens 1e9", _dumps(long_reply))]


def _schema_cases(model: str) -> list[HostileRequest]:
    """The lax-parsing and untokenizable-text cases found by hand: each must be refused."""
    def case(name: str, path: tuple, value, stream: bool = False) -> HostileRequest:
        return HostileRequest(f"schema: {name}", _dumps(_set(base_request(model, stream), path, value)))

    text = ("messages", 0, "content", 0, "text")
    return [
        case("max_tokens: true", ("max_tokens",), True),
        case("n: true", ("n",), True),
        case("temperature: true", ("temperature",), True),
        case("stream_options.include_usage: 'yes'", ("stream_options", "include_usage"), "yes", stream=True),
        case("content: ''", ("messages", 0, "content"), ""),
        case("content: []", ("messages", 0, "content"), []),
        case("modalities: []", ("modalities",), []),
        case("lone surrogate as content", ("messages", 0, "content"), SURROGATE),
        case("lone surrogate in a text part", text, "a" + SURROGATE),
        case("lone surrogate in a text part, streamed", text, SURROGATE + "b", stream=True),
        case("low surrogate as content, streamed", ("messages", 0, "content"), "\udfff", stream=True),
    ]


def hostile_requests(n: int, seed: int = 0, model: str = "nexus-o") -> list[HostileRequest]:
    """`n` malformed requests (n >= 1), the same for the same seed: every fixed case once (raw
    bodies, media, lengths, as many as fit), the rest field mutations drawn at random, in a shuffled order."""
    rng = random.Random(seed)
    fixed = _raw_cases(model) + _schema_cases(model) + _length_cases(model)
    for label, part in media_cases():
        body = base_request(model)
        body["messages"][0]["content"].append(part)
        fixed.append(HostileRequest(label, _dumps(body)))
    cases = fixed[:n]
    while len(cases) < n:
        path, value = rng.choice(FIELDS), rng.choice(VALUES)
        body = base_request(model, stream=rng.random() < 0.25)
        if path[0] == "stream_options" and "stream_options" not in body:
            body["stream_options"] = {}
        if path[0] == "audio" and len(path) > 1:
            body.update(modalities=["text", "audio"], audio={"voice": "default", "format": "wav"})
        cases.append(HostileRequest(f"field: {'.'.join(map(str, path))} = {json.dumps(value)[:40]}",
                                    _dumps(_set(body, path, value))))
    rng.shuffle(cases)
    return cases


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def openai_shaped(body: bytes) -> bool:
    """True for `{"error": {"message": str, "type": str, "param", "code"}}`."""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return (isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
            and isinstance(error["message"], str) and isinstance(error["type"], str))


@dataclass
class FuzzReport:
    """What `run_fuzz` saw. statuses: status code -> count; failures: (label, what went wrong)."""

    planned: int = 0
    tried: int = 0
    statuses: Counter = field(default_factory=Counter)
    hangs: int = 0
    unshaped: int = 0
    slowest: float = 0.0
    slowest_name: str = ""
    rss_before: int = 0
    rss_after: int = 0
    health_after: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)

    def count(self, low: int) -> int:
        return sum(n for status, n in self.statuses.items() if low <= status < low + 100)

    def format(self) -> str:
        grown = (self.rss_after - self.rss_before) / 2 ** 20
        of = f" of {self.planned} (out of time)" if self.tried < self.planned else ""
        return (f"tried {self.tried}{of}: 2xx {self.count(200)}, 4xx {self.count(400)} "
                f"({self.unshaped} not in OpenAI's error shape), 5xx {self.count(500)}, hangs {self.hangs}; "
                f"slowest {self.slowest:.2f} s ({self.slowest_name}); memory {self.rss_before / 2 ** 20:.0f} -> "
                f"{self.rss_after / 2 ** 20:.0f} MB ({grown:+.1f} MB); /health after: "
                f"{'ok' if self.health_after else 'FAILED'}")


def run_fuzz(url: str, cases: list[HostileRequest], timeout: float, grace: float = 5.0,
             budget: float | None = None) -> FuzzReport:
    """Send `cases` to `url` (a server base URL) one at a time. A case answered later than `timeout`
    seconds (the server's request timeout), or not within `timeout + grace`, counts as a hang.
    budget: stop sending after this many seconds (a server that hangs would take hours).
    Memory is this process's (an in-process server)."""
    import httpx

    report = FuzzReport(planned=len(cases), rss_before=rss_bytes())
    stop = None if budget is None else time.monotonic() + budget
    with httpx.Client(base_url=url, timeout=timeout + grace) as client:
        for case in cases:
            if stop is not None and time.monotonic() > stop:
                break
            report.tried += 1
            start = time.perf_counter()
            try:
                response = client.post("/v1/chat/completions", content=case.body,
                                       headers={"Content-Type": case.content_type})
            except httpx.TimeoutException:
                report.hangs += 1
                report.failures.append((case.name, f"no answer within {timeout + grace:g} s"))
                continue
            except httpx.HTTPError as err:
                report.failures.append((case.name, f"connection error: {err!r}"))
                continue
            took = time.perf_counter() - start
            if took > report.slowest:
                report.slowest, report.slowest_name = took, case.name
            report.statuses[response.status_code] += 1
            if took > timeout:
                report.hangs += 1
                report.failures.append((case.name, f"answered after {took:.1f} s, over the {timeout:g} s timeout"))
            if response.status_code >= 500:
                report.failures.append((case.name, f"{response.status_code}: {response.text[:200]}"))
            elif response.status_code >= 400 and not openai_shaped(response.content):
                report.unshaped += 1
                report.failures.append((case.name, f"{response.status_code} not OpenAI-shaped: {response.text[:200]}"))
        try:
            report.health_after = client.get("/health").json().get("status") == "ok"
        except (httpx.HTTPError, ValueError):
            report.health_after = False
    report.rss_after = rss_bytes()
    return report
