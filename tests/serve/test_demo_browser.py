"""The web demo in headless Chromium (Debian's `chromium`, driven by Playwright): send text and an
image, get the answer in the history, and play the spoken reply; ask the tiny world's test examples
in writing and aloud with one click."""

from __future__ import annotations

import base64
import shutil

import pytest

from nexus_o.serve.app import create_app
from nexus_o.serve.examples import load_examples
from nexus_o.serve.server import BackgroundServer
from nexus_o.serve.settings import ServeSettings
from tests.serve.conftest import png_data_url

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(scripts/install.sh installs it where apt-get runs as root)")


@pytest.fixture(scope="module")
def server(speaking, world):
    settings = ServeSettings(model_name="tiny", max_tokens=8, max_speech_seconds=0.5)
    with BackgroundServer(create_app(speaking, settings, examples=load_examples(world[0], limit=4))) as live:
        yield live


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.goto(server.url + "/demo")
        yield page
        browser.close()


def test_page_loads_and_knows_the_model(page):
    page.wait_for_function("document.getElementById('model-name').textContent.includes('tiny')", timeout=10_000)
    assert page.is_checked("#speak") and page.title() == "nexus-o demo"


def test_text_and_image_get_a_spoken_answer(page, tmp_path):
    image = tmp_path / "shapes.png"
    image.write_bytes(base64.b64decode(png_data_url(64, 48).split(",", 1)[1]))
    page.set_input_files("#image", str(image))
    page.wait_for_selector("#attachments .chip")
    page.fill("#text", "What colour is the square?")
    page.click("#send")
    page.wait_for_selector(".msg.assistant[data-state='done']", timeout=30_000)
    user = page.locator(".msg.user").last
    assert "square" in user.inner_text() and user.locator("img").count() == 1
    assert page.locator(".msg.error").count() == 0
    answer = page.locator(".msg.assistant").last
    assert answer.locator(".text").inner_text().strip()  # the transcript arrived in the history
    audio = answer.locator("audio")
    assert audio.count() == 1 and audio.get_attribute("src").startswith("blob:")
    played = audio.evaluate("""el => el.play().then(() => 'played', err => 'refused: ' + err.name)""")
    state = audio.evaluate("el => new Promise(r => el.readyState >= 1 ? r(el.readyState) : "
                           "el.addEventListener('loadedmetadata', () => r(el.readyState)))")
    assert played == "played" and state >= 1
    assert audio.evaluate("el => el.duration") > 0.1


def test_audio_file_turn_without_speech_keeps_the_history(page, tmp_path):
    import numpy as np
    import soundfile as sf

    clip = tmp_path / "tone.flac"  # any format the browser decodes; the page sends 16 kHz WAV
    sf.write(clip, (0.3 * np.sin(np.arange(22050) / 4)).astype(np.float32), 22050, format="FLAC")
    page.uncheck("#speak")
    page.set_input_files("#audio-file", str(clip))
    page.wait_for_selector("#attachments .chip")
    page.fill("#text", "And this sound?")
    page.press("#text", "Enter")
    page.wait_for_function("document.querySelectorAll(\".msg.assistant[data-state='done']\").length >= 2",
                           timeout=30_000)
    assert page.locator(".msg.error").count() == 0
    assert page.locator(".msg.user").count() == 2 and page.locator(".msg.user").last.locator("audio").count() == 1
    assert page.locator(".msg.assistant").last.locator("audio").count() == 0
    assert page.evaluate("state.messages.length") == 4  # two user turns, two replies


def test_an_example_is_one_click_away_in_writing_and_aloud(page):
    page.wait_for_selector("#examples:not([hidden]) .example")
    assert page.locator(".example").count() == 4
    first = page.locator(".example").first
    assert first.get_attribute("data-kind") == "digit"
    question = first.locator(".question").inner_text()
    assert first.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    page.uncheck("#speak")
    first.locator(".ask-written").click()  # a new chat: the image and the written question, sent
    page.wait_for_selector(".msg.assistant[data-state='done']", timeout=30_000)
    user = page.locator(".msg.user")
    assert user.count() == 1 and question in user.inner_text() and user.locator("img").count() == 1
    assert page.locator(".msg.error").count() == 0

    first.locator(".ask-spoken").click()  # a new chat: the image and the spoken question
    page.wait_for_function("document.querySelectorAll('.msg.user audio').length == 1 && "
                           "document.querySelector(\".msg.assistant[data-state='done']\") !== null", timeout=30_000)
    assert page.locator(".msg.error").count() == 0 and page.locator(".msg.user").count() == 1
    roles = page.evaluate("state.messages.map(m => m.role)")
    assert roles == ["system", "user", "assistant"]
