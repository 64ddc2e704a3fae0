"""Running the app: `run_server` (foreground, for `nexus-o serve` / `demo`) and `BackgroundServer`
(a live server on a free loopback port in a thread, for tests, benchmarks and notebooks)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

from nexus_o.bundle.loading import load_model
from nexus_o.bundle.omni import OmniModel
from nexus_o.serve.settings import ServeSettings
from nexus_o.serve.app import create_app
from nexus_o.serve.examples import find_world, load_examples

log = logging.getLogger("nexus_o.serve")


def load_for_serving(model: str | Path) -> OmniModel:
    """The `OmniModel` of a preset name or checkpoint folder, in eval mode."""
    return load_model(model).eval()


def run_server(model: str | Path, settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000,
               banner: str | None = None) -> None:
    """Load `model` and serve it until interrupted; `banner` is printed once the model is loaded.

    The demo offers the test examples of the tiny world in `settings.demo_examples`, else of the
    one found beside the checkpoint (`serve.examples.find_world`), if any.
    """
    import uvicorn

    world = settings.demo_examples or find_world(model)
    examples = load_examples(world) if world is not None else []
    app = create_app(load_for_serving(model), settings, examples=examples)
    if examples:
        print(f"demo: {len(examples)} test examples of the tiny world in {world}", flush=True)
    if banner:
        print(banner, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)


class BackgroundServer:
    """Serve `app` on 127.0.0.1 at a free port in a daemon thread: `with BackgroundServer(app) as s: s.url`."""

    def __init__(self, app, host: str = "127.0.0.1", log_level: str = "warning"):
        import uvicorn

        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="nexus-o-http", daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT (the OpenAI base_url is url + "/v1")."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self._thread.start()
        stop = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > stop:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
