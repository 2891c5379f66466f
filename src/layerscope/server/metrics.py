"""Prometheus metrics (``/metrics``) and per-session usage, recorded without storing any prompt.

INTERFACE ONLY (the metrics helper implements it): the protocol calls exactly these methods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class SessionStats:
    """One WebSocket connection's usage, as the page reports it (no prompt text, ever)."""

    opened: float = field(default_factory=time.monotonic)
    layers_scrubbed: int = 0
    views: set[str] = field(default_factory=set)
    experiments: set[str] = field(default_factory=set)


class Metrics:
    """One per app: request counts and latencies per type, errors by code, connections, sessions."""

    def session_opened(self) -> SessionStats:
        return SessionStats()

    def session_closed(self, stats: SessionStats) -> None:
        pass

    def request_finished(self, type_: str, seconds: float, outcome: str) -> None:
        """``outcome``: "ok", an error code ("busy", "bad_request", ...) or "cancelled"."""
