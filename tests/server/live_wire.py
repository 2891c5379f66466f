"""A real server on loopback and a WebSocket client whose every read has a time limit.

The bad-input and fuzz tests use these rather than Starlette's TestClient, whose ``receive`` waits
forever: here a server that never answers fails the test (``TimeoutError``) instead of hanging it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from websockets.sync.client import ClientConnection, connect

from layerscope.server.handlers import REGISTRY
from layerscope.server.registry import Registry
from server.server_helpers import Serving

#: seconds one answer may take on the tiny model (a busy CI machine included)
ANSWER_TIMEOUT = 30.0


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port for the block; yields ``host:port``."""
    with Serving(app, ws_ping_interval=None) as live:
        yield live.address


class Wire:
    """One WebSocket to the server: send text or bytes, read answers with a time limit, check
    every frame against the protocol's schema."""

    def __init__(self, url: str, session: str | None = None, registry: Registry = REGISTRY):
        query = f"?session={session}" if session else ""
        self.registry = registry
        self.terminal = {t for rt in registry for t in rt.info().terminal} | {"error"}
        self._stack = ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(
                f"ws://{url}/ws{query}", proxy=None, max_size=None, open_timeout=10, close_timeout=2
            )
        )
        self.hello = self.frame()
        assert self.hello["type"] == "hello", self.hello

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, message: dict | str | bytes, *, text: bool | None = None) -> None:
        """A dict goes as JSON; a str as a text frame; bytes as a binary frame (or, with
        ``text=True``, as a text frame holding those bytes, valid UTF-8 or not)."""
        if isinstance(message, dict):
            message = json.dumps(message)
        self.ws.send(message, text=text)

    def frame(self, timeout: float = ANSWER_TIMEOUT) -> dict:
        """The next frame, validated against the server frame union (TimeoutError if none)."""
        raw = self.ws.recv(timeout=timeout)
        assert isinstance(raw, str), "the server sent a binary frame"
        f = json.loads(raw)
        self.registry.server_frame.validate_python(f)
        return f

    def answer(self, req: int | None, timeout: float = ANSWER_TIMEOUT) -> list[dict]:
        """Frames answering ``req`` up to its terminal one (an error with ``req`` null counts when
        the request could not be read); frames of other requests are skipped."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.frame(max(deadline - time.monotonic(), 0.001))
            if f.get("req") == req or (f["type"] == "error" and f.get("req") is None):
                out.append(f)
                if f["type"] in self.terminal:
                    return out

    def ask(self, message: dict | str, req: int | None, timeout: float = ANSWER_TIMEOUT) -> dict:
        """Send ``message`` and return the frame that ends it."""
        self.send(message)
        return self.answer(req, timeout)[-1]

    def still_works(self, trace_id: str, req: int = 999_998) -> None:
        """A quick request on the model worker (a stored trace's cell) is answered."""
        f = self.ask(
            {"type": "cell", "req": req, "trace_id": trace_id, "layer": 0, "position": 0}, req
        )
        assert f["type"] == "cell", f

    def trace_works(self, req: int = 999_999) -> str:
        """Run a short trace on this connection; its trace id (asserts it completes)."""
        done = self.ask({"type": "trace", "req": req, "prompt": "Hello world"}, req)
        assert done["type"] == "done", done
        return done["trace_id"]
