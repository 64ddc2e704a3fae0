"""The web demo: one page of our own (vanilla JS, no CDN, no network) served by the API app at /demo.

The page (static/index.html, demo.js, demo.css) talks to `/v1/chat/completions` like any client:
text, images (upload), audio (microphone through MediaRecorder, or upload; converted to 16 kHz
WAV in the browser), chat history, streamed replies, and spoken replies played in an <audio>.
When the model was trained on the tiny world, the page also lists the world's test examples
(`serve/examples.py`): an image, its question written and spoken, and the expected answer; one
click asks it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from nexus_o.serve.examples import DemoExample

STATIC_DIR = Path(__file__).resolve().parent / "static"


def add_demo_routes(app: FastAPI, examples: list[DemoExample] | None = None) -> None:
    """GET /demo (the page), /demo/static/* (its script and style), / -> /demo, /favicon.ico (none),
    /demo/examples (the examples' list, maybe empty) and /demo/examples/{i}/image|audio (their files:
    only those, so no path from a client is ever opened)."""
    examples = list(examples or [])
    if not (STATIC_DIR / "index.html").is_file():
        raise FileNotFoundError(f"the demo page is missing from {STATIC_DIR} (index.html)")

    @app.get("/demo", include_in_schema=False)
    async def demo_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/demo")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/demo/examples", include_in_schema=False)
    async def example_list() -> dict:
        return {"examples": [example.to_json(index) for index, example in enumerate(examples)]}

    @app.get("/demo/examples/{index}/{media}", include_in_schema=False)
    async def example_media(index: int, media: str) -> FileResponse:
        path = None
        if 0 <= index < len(examples) and media in ("image", "audio"):
            path = examples[index].image if media == "image" else examples[index].audio
        if path is None:
            raise HTTPException(status_code=404, detail="no such example file")
        return FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    app.mount("/demo/static", StaticFiles(directory=STATIC_DIR), name="demo-static")
