"""Helpers shared by the server tests: read frames the way a client does, checking each."""

from __future__ import annotations

from layerscope.server.handlers import REGISTRY

#: frame types that end a request (as the hello frame declares them), and errors
TERMINAL = {t for rt in REGISTRY for t in rt.info().terminal} | {"error"}


def frames_until_done(ws, req: int) -> list[dict]:
    """Frames answering ``req`` up to its terminal one, each checked against its schema."""
    out = []
    while True:
        f = ws.receive_json()
        REGISTRY.server_frame.validate_python(f)
        if f.get("req") != req:
            continue
        out.append(f)
        if f["type"] in TERMINAL:
            return out


def ask(ws, msg: dict, fields: set[str] | None = None) -> dict:
    """Send a one-frame request and return its answer (checking its field set if given)."""
    ws.send_json(msg)
    f = frames_until_done(ws, msg["req"])[-1]
    if fields is not None and f["type"] != "error":
        assert set(f) == fields, f["type"]
    return f


def traced(ws, prompt: str = "The capital of France is", req: int = 1) -> dict:
    """Trace ``prompt`` on an open socket; its done frame."""
    ws.send_json({"type": "trace", "req": req, "prompt": prompt})
    return frames_until_done(ws, req)[-1]


def local_client(app, **kwargs):
    """A TestClient reaching ``app`` as ``localhost`` over HTTP and WebSocket alike.

    The server refuses requests for hosts that are not its own (DNS rebinding), Starlette's
    default ``testserver`` included; ``websocket_connect`` ignores ``base_url``, hence the header.
    """
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://localhost", headers={"host": "localhost"}, **kwargs)


class Serving:
    """A real uvicorn serving ``app`` on a free loopback port, in a thread (a context manager):
    ``address`` is host:port; leaving it stops the server gracefully (lifespan shutdown too)."""

    def __init__(self, app, **config) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **config)
        )

    def __enter__(self) -> Serving:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            assert self.thread.is_alive(), "server failed to start"
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 15) -> bool:
        """Ask the server to exit; True if its thread ended within ``timeout`` seconds."""
        self.server.should_exit = True
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def __exit__(self, *exc) -> None:
        self.stop()


def raw_websocket(port: int):
    """A plain socket that has done the WebSocket handshake with /ws (for frames no client
    library would send); the server's hello frame is left unread."""
    import base64
    import os
    import socket

    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455): opcode 1 text, 2 binary."""
    import os

    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        size = bytes([0x80 | n])
    elif n < 1 << 16:
        size = bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        size = bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return (
        bytes([0x80 | opcode]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )
