"""`nexus-o serve`, `demo` and `chat` end to end on the tiny preset."""

from __future__ import annotations

import io

import httpx
import soundfile as sf
from typer.testing import CliRunner

from nexus_o.cli import app
from nexus_o.serve import server as server_module
from nexus_o.serve import terminal as terminal_module
from nexus_o.serve.server import BackgroundServer
from nexus_o.serve.terminal import interactive
from tests.serve.conftest import png_data_url

runner = CliRunner()


def test_serve_command_answers_over_http(monkeypatch):
    import uvicorn

    seen = {}

    def fake_run(app, host, port, **_):  # instead of blocking forever: serve, ask, stop
        with BackgroundServer(app) as live:
            body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
            seen["reply"] = httpx.post(live.url + "/v1/chat/completions", json=body, timeout=30)
            seen["demo"] = httpx.get(live.url + "/demo")
        seen["address"] = (host, port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    result = runner.invoke(app, ["serve", "--model", "tiny", "--port", "8123", "--max-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert "serving 'tiny' on http://127.0.0.1:8123/v1" in result.output and seen["address"] == ("127.0.0.1", 8123)
    assert seen["reply"].status_code == 200 and seen["reply"].json()["usage"]["completion_tokens"] <= 4
    assert seen["demo"].headers["content-type"].startswith("text/html")


def test_serve_and_demo_report_bad_input(monkeypatch, tmp_path):
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no model checkpoint" in result.output
    result = runner.invoke(app, ["serve", "--model", "tiny", "--max-queue", "-1"])
    assert result.exit_code == 2 and "max_queue" in result.output
    calls = []
    monkeypatch.setattr(server_module, "run_server", lambda *args, **kwargs: calls.append((args, kwargs)))
    config = tmp_path / "serve.yaml"
    config.write_text("max_tokens: 7\n")
    assert runner.invoke(app, ["demo", "--model", "tiny", "--port", "7999", "-c", str(config)]).exit_code == 0
    (model, settings), options = calls[0]
    assert model == "tiny" and settings.max_tokens == 7 and settings.model_name == "tiny"
    assert options["port"] == 7999 and "http://127.0.0.1:7999/demo" in options["banner"]


def test_chat_one_turn_on_the_tiny_preset():
    result = runner.invoke(app, ["chat", "--model", "tiny", "--text", "hello"])
    assert result.exit_code == 0, result.output
    assert result.output.strip()
    result = runner.invoke(app, ["chat", "--model", "tiny", "--image", "missing.png", "--text", "hi"])
    assert result.exit_code == 2 and "image file not found: missing.png" in result.output


def test_chat_speaks_and_keeps_history(speaking, monkeypatch, tmp_path):
    omni = speaking
    monkeypatch.setattr(terminal_module, "load_for_serving", lambda ref: speaking)
    image = tmp_path / "shape.png"
    import base64

    image.write_bytes(base64.b64decode(png_data_url().split(",", 1)[1]))
    out = tmp_path / "reply.wav"
    result = runner.invoke(app, ["chat", "--model", "tiny", "--image", str(image), "--text", "what?",
                                 "--speak", str(out)])
    assert result.exit_code == 0, result.output
    wav, rate = sf.read(out)
    assert rate == omni.codec.sample_rate and wav.size > 0

    written = []
    script = io.StringIO(f"/image {image}\nwhat is it?\n/image nowhere.png\nand now?\n/reset\n/exit\n")
    interactive(omni, stdin=script, write=written.append)
    text = "".join(written)
    assert f"[image attached: {image}]" in text and "[no such file: nowhere.png]" in text
    assert text.count("model> ") == 2 and "[conversation cleared]" in text
