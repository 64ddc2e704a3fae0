"""`nexus-o serve --model tiny` answers a request for speech with audio (random speech decoder,
the built-in codec shipped with the package)."""

from __future__ import annotations

import base64
import io

import soundfile as sf


def test_the_tiny_preset_server_answers_a_speech_request_with_audio():
    import openai

    from nexus_o.serve.app import create_app
    from nexus_o.serve.server import BackgroundServer, load_for_serving
    from nexus_o.serve.settings import ServeSettings

    omni = load_for_serving("tiny")  # what `nexus-o serve --model tiny` serves
    settings = ServeSettings(model_name="tiny", max_tokens=4, max_speech_seconds=0.5)
    with BackgroundServer(create_app(omni, settings)) as live:
        client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        assert client.with_options().models.list().data[0].id == "tiny"
        reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hello!"}],
                                               modalities=["text", "audio"],
                                               audio={"voice": "default", "format": "wav"})
    wav, rate = sf.read(io.BytesIO(base64.b64decode(reply.choices[0].message.audio.data)))
    assert rate == omni.codec.sample_rate == 22050 and wav.size > 0
