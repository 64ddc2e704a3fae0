"""The web demo: one page of our own (vanilla JS, no CDN, no network) served by the API app at /demo.

The page (static/index.html, demo.js, demo.css) talks to `/v1/chat/completions` like any client:
text, images (upload), audio (microphone through MediaRecorder, or upload; converted to 16 kHz
WAV in the browser), chat history, streamed replies, and spoken replies played in an <audio>.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"


def add_demo_routes(app: FastAPI) -> None:
    """GET /demo (the page), /demo/static/* (its script and style), / -> /demo, /favicon.ico (none)."""
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

    app.mount("/demo/static", StaticFiles(directory=STATIC_DIR), name="demo-static")
