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
