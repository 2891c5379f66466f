"""Every bound the server enforces, in one place (``create_app(limits=...)``, ``serve`` flags)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


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

    @classmethod
    def parse(cls, pairs: list[str]) -> Limits:
        """Limits from ``NAME=VALUE`` strings (``layerscope serve --limit client_rate=50``); a
        ``ValueError`` names an unknown limit or a bad value. ``none`` unsets ``idle_seconds``."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for pair in pairs:
            name, sep, text = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in known:
                raise ValueError(
                    f"{pair!r}: expected NAME=VALUE with NAME one of {', '.join(known)}"
                )
            kind = int if known[name].type in ("int", int) else float
            try:
                value = None if text.strip().lower() == "none" else kind(text)
            except ValueError:
                raise ValueError(f"{pair!r}: {text!r} is not a number") from None
            if value is None and name != "idle_seconds":
                raise ValueError(f"{pair!r}: only idle_seconds can be none")
            if value is not None and value <= 0:
                raise ValueError(f"{pair!r}: must be positive")
            values[name] = value
        return replace(cls(), **values)
