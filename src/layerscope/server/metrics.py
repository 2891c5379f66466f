"""Prometheus metrics (``GET /metrics``) and per-session usage, recorded without storing any prompt.

One :class:`Metrics` per app, each with its own ``CollectorRegistry``. The protocol calls
:meth:`Metrics.session_opened` when a WebSocket opens, :meth:`Metrics.session_closed` when it
closes and :meth:`Metrics.request_finished` after every request; the ``usage`` request (the page's
debounced report) calls :meth:`Metrics.record_usage`. Values read from the server at scrape time
(queue, store, model) come from :meth:`Metrics.watch`.

No free text ever becomes a label: request types, outcomes, view and experiment names must match
:data:`NAME_RE`, and each label keeps at most :data:`MAX_LABEL_VALUES` distinct values (the rest
count as ``other``), so a client cannot grow the exposition without bound.

Metrics (type, labels: meaning):

- ``layerscope_requests_total`` counter, ``type``, ``outcome``: requests finished; outcome is
  ``ok``, an error code (``bad_request``, ``busy``, ``not_found``, ``internal``,
  ``unavailable``) or ``cancelled``; type ``invalid`` for frames that failed validation.
- ``layerscope_request_seconds`` histogram, ``type``: time from arrival to the last frame
  (buckets 5 ms … 60 s).
- ``layerscope_errors_total`` counter, ``code``: requests answered with an error frame.
- ``layerscope_connected_clients`` gauge: open WebSocket connections.
- ``layerscope_sessions_total`` counter: WebSocket connections opened.
- ``layerscope_session_seconds`` histogram: how long a connection stayed open (observed when it
  closes; buckets 10 s … 4 h, with 180 s for the brief's "over three minutes").
- ``layerscope_session_layers_scrubbed`` histogram: layer changes the person made in one session
  (observed when it closes; buckets 0 … 1000, with 20 for the brief's "more than twenty").
- ``layerscope_layers_scrubbed_total`` counter: layer changes reported, over all sessions.
- ``layerscope_views_used_total`` counter, ``view``: sessions that opened the view (once each).
- ``layerscope_experiments_used_total`` counter, ``experiment``: sessions that ran the
  experiment (once each): a request type (``effect``, ``steer_sweep``, ...) or ``trace_<kind>``
  for a trace run with interventions (``trace_ablate``, ``trace_steer``, ``trace_patch``).
- ``layerscope_queue_depth`` gauge: jobs waiting on the model worker (read at scrape time).
- ``layerscope_worker_busy`` gauge: 1 while the model worker runs a job (scrape time).
- ``layerscope_stored_results`` gauge: results held in memory: traces, sweeps, vectors (scrape).
- ``layerscope_stored_bytes`` gauge: bytes those results hold (scrape time).
- ``layerscope_model_info`` info, ``name``, ``family``, ``device``: the model served now.
- ``layerscope_process_*``: the server process's memory, CPU time, open files (standard).

Counters also expose ``*_created`` samples, histograms ``_bucket``/``_count``/``_sum``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "NAME_RE", "Metrics", "SessionStats"]

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
"""What a request type, outcome, view or experiment name must look like to become a label."""
MAX_LABEL_VALUES = 64
"""Distinct values one label keeps; later new values are counted as :data:`OTHER`."""
OTHER = "other"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SESSION_BUCKETS = (10.0, 30.0, 60.0, 180.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
SCRUB_BUCKETS = (0.0, 1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
NOT_ERRORS = frozenset({"ok", "cancelled"})


@dataclass
class SessionStats:
    """One WebSocket connection's usage, as the page reports it (no prompt text, ever)."""

    opened: float = field(default_factory=time.monotonic)
    layers_scrubbed: int = 0
    views: set[str] = field(default_factory=set)
    experiments: set[str] = field(default_factory=set)
    closed: bool = False

    def seconds(self) -> float:
        """How long the session has been open."""
        return time.monotonic() - self.opened


class _Labels:
    """Admits a label's values: well-formed names only, at most ``limit`` distinct ones."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or not NAME_RE.fullmatch(value):
            return OTHER
        with self._lock:
            if value in self.seen:
                return value
            if len(self.seen) >= self.limit:
                return OTHER
            self.seen.add(value)
            return value


class Metrics:
    """One per app: request counts and latencies per type, errors by code, connections, sessions
    and the page's usage reports, in this instance's own ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None, process: bool = True) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self._types, self._outcomes, self._codes = _Labels(), _Labels(), _Labels()
        self._views, self._experiments = _Labels(), _Labels()
        self.requests = Counter(
            "layerscope_requests", "Requests finished, by type and outcome.",
            ["type", "outcome"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "layerscope_request_seconds", "Time from a request's arrival to its last frame.",
            ["type"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "layerscope_errors", "Requests answered with an error frame, by code.", ["code"],
            registry=r,
        )  # fmt: skip
        self.clients = Gauge(
            "layerscope_connected_clients", "Open WebSocket connections.", registry=r
        )
        self.sessions = Counter("layerscope_sessions", "WebSocket connections opened.", registry=r)
        self.session_seconds = Histogram(
            "layerscope_session_seconds", "How long a WebSocket session stayed open.",
            buckets=SESSION_BUCKETS, registry=r,
        )  # fmt: skip
        self.session_layers = Histogram(
            "layerscope_session_layers_scrubbed", "Layer changes a person made in one session.",
            buckets=SCRUB_BUCKETS, registry=r,
        )  # fmt: skip
        self.layers_scrubbed = Counter(
            "layerscope_layers_scrubbed", "Layer changes reported by pages, all sessions.",
            registry=r,
        )  # fmt: skip
        self.views = Counter(
            "layerscope_views_used", "Sessions that opened a view (each view once a session).",
            ["view"], registry=r,
        )  # fmt: skip
        self.experiments = Counter(
            "layerscope_experiments_used",
            "Sessions that ran an experiment (each experiment once a session).",
            ["experiment"], registry=r,
        )  # fmt: skip
        if process:
            ProcessCollector(namespace="layerscope", registry=r)
        self._server: _ServerCollector | None = None

    # ------------------------------------------------------------------ called by the protocol
    def session_opened(self) -> SessionStats:
        """A WebSocket opened: count it; its usage goes into the returned stats."""
        self.sessions.inc()
        self.clients.inc()
        return SessionStats()

    def session_closed(self, stats: SessionStats) -> None:
        """The WebSocket of ``stats`` closed: observe its length and layers (once)."""
        if stats.closed:
            return
        stats.closed = True
        self.clients.dec()
        self.session_seconds.observe(max(0.0, stats.seconds()))
        self.session_layers.observe(stats.layers_scrubbed)

    def request_finished(self, type_: str, seconds: float, outcome: str) -> None:
        """``outcome``: "ok", an error code ("busy", "bad_request", ...) or "cancelled"."""
        t = self._types(type_)
        o = self._outcomes(outcome)
        self.requests.labels(type=t, outcome=o).inc()
        if isinstance(seconds, (int, float)) and math.isfinite(seconds):
            self.latency.labels(type=t).observe(max(0.0, float(seconds)))
        if outcome not in NOT_ERRORS:
            self.errors.labels(code=self._codes(outcome)).inc()

    # ------------------------------------------------------------------ the page's usage report
    def record_usage(
        self,
        stats: SessionStats | None,
        layers_scrubbed: int,
        views: Iterable[str] = (),
        experiments: Iterable[str] = (),
    ) -> None:
        """Add one usage report to ``stats`` (None: no session, nothing recorded).

        Views and experiments count once per session, the first time they are reported; names
        that are not well-formed are ignored (the request schema refuses them before this).
        """
        if stats is None or stats.closed:
            return
        n = max(0, int(layers_scrubbed))
        stats.layers_scrubbed += n
        if n:
            self.layers_scrubbed.inc(n)
        for name in views:
            if NAME_RE.fullmatch(name) and name not in stats.views:
                stats.views.add(name)
                self.views.labels(view=self._views(name)).inc()
        for name in experiments:
            if NAME_RE.fullmatch(name) and name not in stats.experiments:
                stats.experiments.add(name)
                self.experiments.labels(experiment=self._experiments(name)).inc()

    # ------------------------------------------------------------------ scraping
    def watch(self, server: Any) -> None:
        """Read ``server`` (a ServerContext: its worker, store and model) at every scrape."""
        if self._server is not None:
            if self._server.server is server:
                return
            self.registry.unregister(self._server)
        self._server = _ServerCollector(server)
        self.registry.register(self._server)

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (serve it as :data:`CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)


class _ServerCollector(Collector):
    """Gauges read from the server when scraped: queue depth, worker, stored results, model."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def describe(self) -> Iterator[Metric]:  # names only: registering must not read the server
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        s = self.server
        depth, busy, results, nbytes, info = self._families()
        depth.add_metric([], s.worker.pending)
        busy.add_metric([], 1 if s.worker.busy else 0)
        results.add_metric([], len(s.store))
        nbytes.add_metric([], s.store.nbytes)
        m = s.model
        info.add_metric([], {"name": m.info.name, "family": m.info.family, "device": str(m.device)})
        return iter((depth, busy, results, nbytes, info))

    @staticmethod
    def _families() -> tuple[Metric, ...]:
        return (
            GaugeMetricFamily("layerscope_queue_depth", "Jobs waiting on the model worker."),
            GaugeMetricFamily("layerscope_worker_busy", "1 while the model worker runs a job."),
            GaugeMetricFamily(
                "layerscope_stored_results", "Results held in memory (traces, sweeps, vectors)."
            ),
            GaugeMetricFamily("layerscope_stored_bytes", "Bytes the stored results hold."),
            InfoMetricFamily("layerscope_model", "The model served now."),
        )
