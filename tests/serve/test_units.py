"""Serve building blocks without a server: media decoding and limits, audio encoding, the queue."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import soundfile as sf

from nexus_o.serve.audio_out import Pcm16Stream, encode_audio, output_sample_rate
from nexus_o.serve.conversation import TranscriptStore
from nexus_o.serve.errors import ApiError, param_path
from nexus_o.serve.request_media import b64decode, decode_audio, decode_image, decode_video, media_bytes
from nexus_o.serve.queue import Batchable, JobCancelled, JobTimeout, ModelWorker, QueueFullError, QueueWaitTimeout
from nexus_o.serve.settings import ServeSettings
from tests.serve.conftest import mp4_bytes


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (its pixel data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def wav_bytes(seconds: float, rate: int = 16000, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * rate), np.float32), rate, format=fmt)
    return buffer.getvalue()


def test_base64_and_data_urls_are_strict():
    settings = ServeSettings()
    with pytest.raises(ApiError) as err:
        b64decode("abc$", "x")
    assert err.value.status == 400 and err.value.code == "invalid_base64"
    assert b64decode("aGVs\nbG8=", "x") == b"hello"
    with pytest.raises(ApiError, match="only base64"):
        media_bytes("data:image/png,rawtext", "image", settings, "p")
    with pytest.raises(ApiError, match="expected a image"):
        media_bytes("data:text/html;base64,aGVsbG8=", "image", settings, "p")
    for url in ("http://example.com/a.png", "https://x/y", "ftp://x/y"):
        with pytest.raises(ApiError) as err:
            media_bytes(url, "image", settings, "p")
        assert err.value.code == "remote_media_refused"
    with pytest.raises(ApiError) as err:
        media_bytes("file:///etc/passwd", "image", settings, "p")
    assert err.value.code == "local_media_refused"


def test_local_media_stays_inside_the_allowed_folder(tmp_path):
    allowed, outside = tmp_path / "media", tmp_path / "secret"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "ok.bin").write_bytes(b"fine")
    (outside / "key.bin").write_bytes(b"secret")
    os.symlink(outside / "key.bin", allowed / "link.bin")
    settings = ServeSettings(allow_local_media=allowed)
    assert media_bytes(f"file://{allowed / 'ok.bin'}", "image", settings, "p") == b"fine"
    assert media_bytes("ok.bin", "image", settings, "p") == b"fine"
    for url in (f"file://{allowed / 'link.bin'}", f"file://{allowed}/../secret/key.bin", str(outside / "key.bin")):
        with pytest.raises(ApiError) as err:
            media_bytes(url, "image", settings, "p")
        assert err.value.code == "local_media_refused", url
    with pytest.raises(ApiError) as err:
        media_bytes(f"file://{allowed / 'missing.png'}", "image", settings, "p")
    assert err.value.code == "media_not_found"


def test_image_limits_are_checked_from_the_header():
    settings = ServeSettings(max_image_pixels=10_000)
    with pytest.raises(ApiError) as err:  # 50k x 50k claimed: refused before any decoding
        decode_image(huge_png_header(50_000, 50_000), settings, "img")
    assert err.value.code == "image_too_large"
    from PIL import Image

    pillow_limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ApiError) as err:
        decode_image(huge_png_header(200, 100), settings, "img")
    assert err.value.code == "image_too_large" and "200x100" in err.value.message
    assert Image.MAX_IMAGE_PIXELS == pillow_limit  # the process-wide Pillow setting is left alone
    with pytest.raises(ApiError) as err:
        decode_image(b"%!PS-Adobe-3.0 EPSF-3.0\n", settings, "img")  # formats outside the list never open
    assert err.value.code == "invalid_image"
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(buffer, format="JPEG")
    assert decode_image(buffer.getvalue(), settings, "img").size == (20, 10)


def test_audio_formats_and_duration_limit():
    settings = ServeSettings(max_audio_seconds=1.0)
    wav, rate = decode_audio(wav_bytes(0.5), "wav", settings, "a")
    assert rate == 16000 and wav.shape == (8000,)
    assert decode_audio(wav_bytes(0.5, fmt="FLAC"), "flac", settings, "a")[0].shape == (8000,)
    pcm = (np.full(2400, 0.5) * 32767).astype("<i2").tobytes()
    wav, rate = decode_audio(pcm, "pcm16", settings, "a")
    assert rate == 24000 and wav.shape == (2400,) and abs(wav[0] - 0.5) < 1e-3
    for data, fmt, code in ((wav_bytes(2.0), "wav", "audio_too_long"), (b"\0" * 48002 * 2, "pcm16", "audio_too_long"),
                            (b"\0\0\0", "pcm16", "invalid_audio"), (wav_bytes(0.5), "flac", "invalid_audio"),
                            (b"not audio at all", "mp3", "invalid_audio")):
        with pytest.raises(ApiError) as err:
            decode_audio(data, fmt, settings, "a")
        assert err.value.status == 400 and err.value.code == code, (fmt, code)
    mp3 = encode_audio(np.zeros(16000, np.float32), 16000, "mp3")
    wav, rate = decode_audio(mp3, "mp3", ServeSettings(), "a")
    assert rate == 16000 and abs(wav.size - 16000) < 2000
    with pytest.raises(ApiError) as err:  # decoding stops at the limit
        decode_audio(encode_audio(np.zeros(48000, np.float32), 16000, "mp3"), "mp3", settings, "a")
    assert err.value.code == "audio_too_long"


def test_video_checks_and_sampling():
    data = mp4_bytes(frames=20, fps=10)
    video = decode_video(data, ServeSettings(), "v", fps=2.0, max_frames=8)
    assert video.frames.shape[1:] == (48, 64, 3) and 2 <= video.frames.shape[0] <= 8
    for settings, code in ((ServeSettings(max_video_frames=5), "video_too_long"),
                           (ServeSettings(max_image_pixels=1000), "video_too_large")):
        with pytest.raises(ApiError) as err:
            decode_video(data, settings, "v")
        assert err.value.code == code
    with pytest.raises(ApiError) as err:  # playlists and other demuxers never run
        decode_video(b"#EXTM3U\n#EXT-X-VERSION:3\nfile:///etc/passwd\n", ServeSettings(), "v")
    assert err.value.code == "invalid_video"


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus", "aac", "pcm16"])
def test_encode_audio_formats_decode_back(fmt):
    rate = 22050
    wav = (0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.float32)
    data = encode_audio(wav, rate, fmt)
    target = output_sample_rate(fmt, rate)
    if fmt == "pcm16":
        assert target == 24000 and len(data) == 2 * 24000
        return
    if fmt == "wav":
        assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and struct.unpack("<I", data[24:28])[0] == rate
    if fmt == "aac":
        import av

        with av.open(io.BytesIO(data)) as container:
            assert container.streams.audio[0].rate == rate
        return
    back, back_rate = sf.read(io.BytesIO(data))
    assert back_rate == target and abs(back.shape[0] - target) < 0.1 * target


def test_pcm16_stream_matches_one_shot_resampling():
    rate = 22050
    wav = (0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.float32)
    stream = Pcm16Stream(rate)
    pieces = [stream.push(wav[i:i + 3000]) for i in range(0, rate, 3000)] + [stream.push(np.zeros(0), last=True)]
    joined = np.frombuffer(b"".join(pieces), "<i2")
    whole = np.frombuffer(encode_audio(wav, rate, "pcm16"), "<i2")
    assert abs(joined.size - whole.size) <= 2
    n = min(joined.size, whole.size)
    assert np.abs(joined[:n].astype(int) - whole[:n]).max() < 200


def test_param_path_and_transcripts():
    assert param_path(("body", "messages", 0, "content", "list[tagged-union[A,B]]", 1, "image_url", "image_url",
                       "url")) == "messages[0].content[1].image_url.url"
    assert param_path(("body", "messages", 2, "content", "str")) == "messages[2].content"
    store = TranscriptStore(ttl=60, max_items=2)
    ids = [store.new_id() for _ in range(3)]
    for i, audio_id in enumerate(ids):
        assert store.put(audio_id, f"t{i}") > time.time()
    assert store.get(ids[0]) is None and store.get(ids[2]) == "t2"


def test_worker_capacity_order_and_timeout():
    async def scenario():
        worker = ModelWorker(max_waiting=1)
        gate, entered = threading.Event(), threading.Event()

        def slow(token):
            entered.set()
            gate.wait(5)
            yield "slow"

        loop = asyncio.get_running_loop()
        first = worker.submit(slow)
        await asyncio.to_thread(entered.wait, 5)
        second = worker.submit(lambda token: iter(["a", "b"]))
        with pytest.raises(QueueFullError):
            worker.submit(lambda token: iter(["c"]))
        with pytest.raises(JobTimeout):
            async for _ in first.items(loop.time() + 0.05):
                pass
        gate.set()
        assert [x async for x in second.items(loop.time() + 5)] == ["a", "b"]

        def broken(token):
            raise ValueError("bad input")
            yield  # unreachable: makes this function a generator

        with pytest.raises(ValueError, match="bad input"):
            async for _ in worker.submit(broken).items(loop.time() + 5):
                pass
        worker.close()

    asyncio.run(scenario())


def test_worker_bounds_queue_waits_and_cancelled_jobs_leave_at_once():
    async def scenario():
        worker = ModelWorker(max_waiting=1)
        entered, stopped = threading.Event(), threading.Event()

        def endless(token):
            entered.set()
            try:
                while not token.cancelled:  # a model loop checking its token at every step
                    time.sleep(0.01)
                    yield "step"
            finally:
                stopped.set()

        loop = asyncio.get_running_loop()
        running = worker.submit(endless)
        pieces = running.items(loop.time() + 30)
        assert await anext(pieces) == "step"
        waiting = worker.submit(lambda token: iter(["late"]))
        with pytest.raises(QueueWaitTimeout):
            async for _ in waiting.items(loop.time() + 30, start_by=loop.time() + 0.2):
                pass
        assert worker.waiting == 1  # dropped from the line only when its place is needed
        third = worker.submit(lambda token: iter(["third"]))  # the cancelled job's place is free
        running.cancel("client left")
        with pytest.raises(JobCancelled, match="client left"):
            await anext(pieces)
        assert await asyncio.to_thread(stopped.wait, 2)  # the work itself stopped at its next step
        assert [x async for x in third.items(loop.time() + 5)] == ["third"]
        worker.close()

    asyncio.run(scenario())


def test_worker_runs_waiting_jobs_of_one_key_as_one_batch():
    """Jobs that wait together run as one call; each gets its own items and ends on its own; a
    job that leaves stops getting items; one that may not batch runs alone; errors reach all."""
    async def scenario():
        worker = ModelWorker(max_waiting=8, max_batch=3)
        gate, entered, calls = threading.Event(), threading.Event(), []

        def hold(token):
            entered.set()
            gate.wait(5)
            yield "held"

        def run(items, tokens):
            calls.append(list(items))
            for step in range(4):
                for index, n in enumerate(items):
                    if step < n and not tokens[index].cancelled:
                        yield index, f"{n}:{step}", step == n - 1
                time.sleep(0.01)

        def alone(n):
            return lambda token: iter([f"alone {n}"])

        loop = asyncio.get_running_loop()
        first = worker.submit(hold)
        await asyncio.to_thread(entered.wait, 5)
        jobs = [worker.submit(alone(n), batch=Batchable("text", n, run)) for n in (1, 3, 4, 2)]
        other = worker.submit(alone(9), batch=Batchable("speech", 9, run))
        gate.set()
        assert [x async for x in first.items(loop.time() + 5)] == ["held"]
        got = [[x async for x in job.items(loop.time() + 5)] for job in jobs[:3]]
        assert got == [["1:0"], ["3:0", "3:1", "3:2"], ["4:0", "4:1", "4:2", "4:3"]]
        assert [x async for x in jobs[3].items(loop.time() + 5)] == ["alone 2"]  # the batch was full: ran alone
        assert [x async for x in other.items(loop.time() + 5)] == ["alone 9"]  # another key
        assert calls == [[1, 3, 4]]

        def broken(items, tokens):
            yield 0, "one", False
            raise ValueError("bad batch")

        async def batch_of(key, sizes, runner):
            gate.clear()
            entered.clear()
            held = worker.submit(hold)
            await asyncio.to_thread(entered.wait, 5)
            batch = [worker.submit(alone(n), batch=Batchable(key, n, runner)) for n in sizes]
            gate.set()
            assert [x async for x in held.items(loop.time() + 5)] == ["held"]
            return batch

        for job in await batch_of("bad", (1, 2, 3), broken):
            with pytest.raises(ValueError, match="bad batch"):
                [x async for x in job.items(loop.time() + 5)]

        leaving, staying = await batch_of("text", (4, 4), run)
        pieces = leaving.items(loop.time() + 5)
        assert await anext(pieces) == "4:0"
        leaving.cancel("client left")
        with pytest.raises(JobCancelled):
            await anext(pieces)
        assert [x async for x in staying.items(loop.time() + 5)] == ["4:0", "4:1", "4:2", "4:3"]
        worker.close()

    asyncio.run(scenario())
