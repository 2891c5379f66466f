"""Helpers for the browser tests: a live server on a thread and a page that polices requests."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = os.environ.get("LAYERSCOPE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("LAYERSCOPE_SHOTS", Path(__file__).parents[2] / "out" / "e2e"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``create_app(model)`` on a thread, on a free loopback port."""

    def __init__(self, model, **app_kwargs) -> None:
        import uvicorn

        from layerscope.server import create_app

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        config = uvicorn.Config(
            create_app(model, **app_kwargs), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Page:
    """A browser page that records every request and blocks (and remembers) non-local ones."""

    def __init__(self, browser, width: int = 1280, height: int = 900) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.hello: dict | None = None  # the server's hello frame, as the page received it
        self.context.route("**/*", self._route)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("websocket", self._websocket)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        host = urlparse(url).hostname
        # file: is a page opened from disk (an exported trace), never the network
        if url.startswith(("data:", "blob:", "file:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def _websocket(self, ws) -> None:
        self.requests.append(ws.url)
        if urlparse(ws.url).hostname not in LOCAL_HOSTS:
            self.foreign.append(ws.url)
        ws.on("framereceived", self._frame)

    def _frame(self, payload) -> None:
        if self.hello is None:  # the first frame of the connection
            self.hello = json.loads(payload)

    def shot(self, name: str, full_page: bool = False, element: str | None = None) -> Path:
        """Save a screenshot: the viewport, the whole page, or one element (a CSS selector)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        if element:
            self.page.locator(element).screenshot(path=str(path))
            return path
        if full_page:  # sticky header: shoot from the top so it sits where a person sees it
            self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        self.context.close()
