"""The demo's tiny-world examples: found beside a quickstart checkpoint, read from the small world,
served to the page (only the listed files), and asked in writing or aloud through the API."""

from __future__ import annotations

import shutil

import httpx
import pytest

from nexus_o.serve.app import create_app
from nexus_o.serve.examples import find_world, load_examples
from nexus_o.serve.server import BackgroundServer
from nexus_o.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def examples(world):
    return load_examples(world[0], limit=6)


def test_examples_cover_every_question_kind_written_and_spoken(world, examples):
    assert {e.kind for e in examples[:4]} == {"digit", "digit_colour", "shape", "shape_colour"}
    digit = examples[0]
    assert digit.kind == "digit" and digit.question.endswith("?") and "<image>" not in digit.question
    assert digit.image.is_file() and digit.image.suffix == ".png"
    assert digit.audio is not None and digit.audio.is_file() and digit.system
    assert digit.answer in ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    with pytest.raises(FileNotFoundError, match="test_vqa.jsonl"):
        load_examples(world[0] / "images")


def test_the_world_is_found_beside_a_quickstart_checkpoint(tmp_path, world):
    run = tmp_path / "run"
    final = run / "stage3_speech" / "final"
    final.mkdir(parents=True)
    shutil.copy(world[0] / "test_vqa.jsonl", tmp_path / "elsewhere.jsonl")  # not the layout: not found
    assert find_world(final) is None and find_world("tiny") is None
    (run / "data").symlink_to(world[0])
    assert find_world(final) == run / "data" and find_world(run) == run / "data"
    assert find_world(world[0]) == world[0].resolve()  # `nexus-o synth tiny-world --out DIR` itself


@pytest.fixture(scope="module")
def server(speaking, examples):
    settings = ServeSettings(model_name="tiny", max_tokens=4, max_speech_seconds=0.3)
    with BackgroundServer(create_app(speaking, settings, examples=examples)) as live:
        yield live


def test_the_page_gets_the_examples_and_only_their_files(server, examples):
    listed = httpx.get(server.url + "/demo/examples").json()["examples"]
    assert [e["question"] for e in listed] == [e.question for e in examples]
    first = listed[0]
    assert first["image_url"] == "/demo/examples/0/image" and "path" not in str(first)
    image = httpx.get(server.url + first["image_url"])
    assert image.status_code == 200 and image.content == examples[0].image.read_bytes()
    assert httpx.get(server.url + first["audio_url"]).content == examples[0].audio.read_bytes()
    for bad in ("/demo/examples/99/image", "/demo/examples/0/config", "/demo/examples/-1/audio"):
        assert httpx.get(server.url + bad).status_code == 404


def test_an_example_asked_aloud_gets_an_answer(server, examples):
    import base64

    example = examples[0]
    image = "data:image/png;base64," + base64.b64encode(example.image.read_bytes()).decode()
    audio = base64.b64encode(example.audio.read_bytes()).decode()
    body = {"model": "tiny", "messages": [
        {"role": "system", "content": example.system},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                     {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]}]}
    reply = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] is not None


def test_without_a_world_the_page_lists_none(speaking):
    with BackgroundServer(create_app(speaking, ServeSettings(model_name="tiny"))) as live:
        assert httpx.get(live.url + "/demo/examples").json() == {"examples": []}
