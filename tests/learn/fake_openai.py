"""A fake OpenAI-compatible chat endpoint on loopback (a tiny http.server in a thread)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    """Answers ``POST /v1/chat/completions``: streams ``pieces`` as SSE (or one JSON object
    when ``stream`` is False), or fails with ``status``. Records every request it gets."""

    def __init__(self, pieces=("Hello", " world"), *, status=200, sse=True) -> None:
        self.pieces = list(pieces)
        self.status = status
        self.sse = sse
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if owner.status != 200:
                    self.send_response(owner.status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "no such model"}}')
                    return
                self.send_response(200)
                if owner.sse:
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    first = {"choices": [{"delta": {"role": "assistant"}}]}
                    self.wfile.write(f"data: {json.dumps(first)}\n\n".encode())
                    for p in owner.pieces:
                        event = {"choices": [{"index": 0, "delta": {"content": p}}]}
                        self.wfile.write(f": keep-alive\n\ndata: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                else:
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    reply = {"choices": [{"message": {"content": "".join(owner.pieces)}}]}
                    self.wfile.write(json.dumps(reply).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
