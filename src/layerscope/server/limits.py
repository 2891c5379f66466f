"""Every bound the server enforces, in one place (``create_app(limits=...)``, ``serve`` flags)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one server admits. The defaults are sized for the product's target (five people at
    once on one model) with room to spare; see the README's "Serving" section for the measurements.

    - ``client_pending``: requests one connection may have waiting or running on the model worker;
      past it that connection gets ``busy`` (others are unaffected).
    - ``total_pending``: jobs waiting on the worker over all connections (memory bound).
    - ``client_rate`` / ``client_burst``: requests per second one connection may send, as a token
      bucket (sustained rate, burst size); past it, ``busy``.
    - ``max_connections``: open WebSockets; one more is refused at the handshake.
    - ``max_message_bytes``: the largest client frame; larger ones get ``bad_request``.
    - ``send_buffer_bytes``: frames queued for one slow client; past it the connection is closed
      (1008, "too slow") and its work cancelled, so a stalled reader cannot grow server memory.
    - ``idle_seconds``: a connection that sends nothing for this long is closed (None: never).
    - ``shutdown_seconds``: at shutdown, how long the running job may take to finish.
    - ``session_bytes`` / ``store_bytes`` / ``max_sessions``: results (traces, sweeps) kept in
      memory per session, over all sessions, and how many sessions; least recently used first out.
    """

    client_pending: int = 16
    total_pending: int = 128
    client_rate: float = 30.0
    client_burst: int = 60
    max_connections: int = 64
    max_message_bytes: int = 100_000
    send_buffer_bytes: int = 32 << 20
    idle_seconds: float | None = 3600.0
    shutdown_seconds: float = 30.0
    session_bytes: int = 512 << 20
    store_bytes: int = 4 << 30
    max_sessions: int = 64
