"""Fuzzing the live tiny server: hundreds of seeded malformed requests, not one 5xx or hang."""

from __future__ import annotations

import json

from nexus_o.serve.app import create_app
from nexus_o.serve.fuzz import hostile_requests, openai_shaped, run_fuzz
from nexus_o.serve.server import BackgroundServer
from nexus_o.serve.settings import ServeSettings

TIMEOUT = 10.0


def test_generator_is_seeded_bounded_and_varied():
    cases = hostile_requests(250, seed=3, model="tiny")
    assert len(cases) == 250 and [c.body for c in cases] == [c.body for c in hostile_requests(250, 3, "tiny")]
    assert [c.body for c in cases] != [c.body for c in hostile_requests(250, 4, "tiny")]
    names = {c.name.split(":")[0] for c in cases}
    assert names == {"raw", "schema", "length", "image", "audio", "video", "field"}
    assert max(len(c.body) for c in cases) < 2 * 2 ** 20
    assert openai_shaped(json.dumps({"error": {"message": "m", "type": "t", "param": None, "code": None}}).encode())
    assert not openai_shaped(b'{"detail": "Not Found"}') and not openai_shaped(b"<html>")


def test_no_malformed_request_gets_a_5xx_or_hangs(speaking):
    settings = ServeSettings(model_name="tiny", max_tokens=16, max_speech_seconds=0.5, request_timeout=TIMEOUT)
    with BackgroundServer(create_app(speaking, settings)) as live:
        report = run_fuzz(live.url, hostile_requests(220, seed=0, model="tiny"), timeout=TIMEOUT)
    print(report.format())  # memory growth, for the record
    assert report.tried == 220 and not report.failures, report.failures
    assert report.count(500) == 0 and report.hangs == 0 and report.unshaped == 0 and report.health_after
    assert report.count(400) > 150 and report.count(200) > 5  # mostly refused, but not everything
