"""Prometheus metrics: counts, histograms and labels of ``Metrics``, and ``GET /metrics`` of a real
app after real requests — with no prompt text anywhere in the exposition."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from layerscope.server.metrics import MAX_LABEL_VALUES, OTHER, Metrics, SessionStats
from server.server_helpers import ask, traced

MARKER = "zqxjmarkerprompt"  # a prompt no metric may ever mention


def value(m: Metrics, metric: str, **labels) -> float | None:
    return m.registry.get_sample_value(metric, labels)


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_requests_counted_by_type_and_outcome_with_errors_by_code():
    m = Metrics()
    for outcome in ["ok", "ok", "busy", "cancelled", "bad_request"]:
        m.request_finished("trace", 0.2, outcome)
    m.request_finished("cell", 0.003, "ok")
    m.request_finished("invalid", 0.0001, "bad_request")
    assert value(m, "layerscope_requests_total", type="trace", outcome="ok") == 2
    assert value(m, "layerscope_requests_total", type="trace", outcome="busy") == 1
    assert value(m, "layerscope_requests_total", type="trace", outcome="cancelled") == 1
    assert value(m, "layerscope_requests_total", type="invalid", outcome="bad_request") == 1
    # errors: every error code, never "ok" or "cancelled"
    assert value(m, "layerscope_errors_total", code="bad_request") == 2
    assert value(m, "layerscope_errors_total", code="busy") == 1
    assert value(m, "layerscope_errors_total", code="ok") is None
    assert value(m, "layerscope_errors_total", code="cancelled") is None


def test_latency_histogram_buckets_from_5_ms_to_60_s():
    m = Metrics()
    for s in (0.003, 0.04, 0.04, 7.0, 75.0):
        m.request_finished("cell", s, "ok")
    m.request_finished("cell", float("nan"), "ok")  # counted as a request, not observed
    bucket = lambda le: value(m, "layerscope_request_seconds_bucket", type="cell", le=le)  # noqa: E731
    assert bucket("0.005") == 1
    assert bucket("0.05") == 3
    assert bucket("10.0") == 4
    assert bucket("60.0") == 4  # 75 s is only in +Inf
    assert bucket("+Inf") == 5
    assert value(m, "layerscope_request_seconds_count", type="cell") == 5
    assert value(m, "layerscope_request_seconds_sum", type="cell") == pytest.approx(82.083)
    assert value(m, "layerscope_requests_total", type="cell", outcome="ok") == 6


def test_sessions_length_layers_views_and_experiments():
    m = Metrics()
    a, b = m.session_opened(), m.session_opened()
    assert value(m, "layerscope_connected_clients") == 2
    assert value(m, "layerscope_sessions_total") == 2
    m.record_usage(a, 12, ["heads", "ablation"], ["effect"])
    m.record_usage(a, 13, ["heads", "steering"], ["effect", "trace_ablate"])
    m.record_usage(b, 3, ["heads"], [])
    assert a.layers_scrubbed == 25 and a.views == {"heads", "ablation", "steering"}
    # a view or an experiment counts once per session that used it
    assert value(m, "layerscope_views_used_total", view="heads") == 2
    assert value(m, "layerscope_views_used_total", view="ablation") == 1
    assert value(m, "layerscope_experiments_used_total", experiment="effect") == 1
    assert value(m, "layerscope_experiments_used_total", experiment="trace_ablate") == 1
    assert value(m, "layerscope_layers_scrubbed_total") == 28

    a.opened -= 200  # a session of 200 s
    m.session_closed(a)
    m.session_closed(a)  # closing twice counts once
    assert value(m, "layerscope_connected_clients") == 1
    assert value(m, "layerscope_session_seconds_count") == 1
    assert value(m, "layerscope_session_seconds_bucket", le="180.0") == 0
    assert value(m, "layerscope_session_seconds_bucket", le="300.0") == 1
    assert value(m, "layerscope_session_layers_scrubbed_sum") == 25
    assert value(m, "layerscope_session_layers_scrubbed_bucket", le="20.0") == 0
    assert value(m, "layerscope_session_layers_scrubbed_bucket", le="50.0") == 1
    m.record_usage(a, 5, ["docs"], [])  # a closed session records nothing more
    assert a.layers_scrubbed == 25 and value(m, "layerscope_views_used_total", view="docs") is None
    m.session_closed(b)
    assert value(m, "layerscope_connected_clients") == 0
    assert value(m, "layerscope_session_layers_scrubbed_bucket", le="5.0") == 1


def test_usage_without_a_session_records_nothing():
    m = Metrics()
    m.record_usage(None, 10, ["heads"], ["effect"])
    assert value(m, "layerscope_layers_scrubbed_total") == 0
    assert value(m, "layerscope_views_used_total", view="heads") is None


def test_labels_admit_only_names_and_a_bounded_number_of_them():
    m = Metrics()
    m.request_finished(f"The {MARKER} is", 0.1, "ok")  # free text never becomes a label
    m.request_finished("trace", 0.1, "Busy!")
    stats = m.session_opened()
    m.record_usage(stats, 1, ["heads\n", "<img src=x>", MARKER.upper()], ["a b"])
    text = m.exposition().decode()
    assert value(m, "layerscope_requests_total", type=OTHER, outcome="ok") == 1
    assert value(m, "layerscope_errors_total", code=OTHER) == 1
    assert MARKER not in text.lower() and "<img" not in text and "Busy!" not in text
    assert "views_used_total{" not in text and "experiments_used_total{" not in text

    for i in range(MAX_LABEL_VALUES + 40):  # a client inventing names cannot grow the output
        m.record_usage(stats, 0, [f"view{i}"], [])
    views = [
        s
        for s in families(m.exposition().decode())["layerscope_views_used"].samples
        if s.name.endswith("_total")
    ]
    assert len(views) == MAX_LABEL_VALUES + 1
    assert value(m, "layerscope_views_used_total", view=OTHER) == 40


def test_each_metrics_has_its_own_registry():
    a, b = Metrics(), Metrics()
    a.request_finished("trace", 0.1, "ok")
    assert value(a, "layerscope_requests_total", type="trace", outcome="ok") == 1
    assert value(b, "layerscope_requests_total", type="trace", outcome="ok") is None


def test_scrape_time_gauges_read_the_server():
    class Store:  # what the collector reads of a ResultStore
        nbytes = 4096

        def __len__(self) -> int:
            return 2

    server = SimpleNamespace(
        worker=SimpleNamespace(pending=3, busy=True),
        store=Store(),
        model=SimpleNamespace(info=SimpleNamespace(name="tiny", family="llama"), device="cpu"),
    )
    m = Metrics()
    m.watch(server)
    m.watch(server)  # watching the same server again changes nothing
    assert value(m, "layerscope_queue_depth") == 3
    assert value(m, "layerscope_worker_busy") == 1
    assert value(m, "layerscope_stored_results") == 2
    assert value(m, "layerscope_stored_bytes") == 4096
    assert value(m, "layerscope_model_info", name="tiny", family="llama", device="cpu") == 1
    server.worker.pending, server.worker.busy = 0, False
    server.model.info.name = "other"  # read at each scrape: a model switch shows at once
    assert value(m, "layerscope_queue_depth") == 0 and value(m, "layerscope_worker_busy") == 0
    assert value(m, "layerscope_model_info", name="other", family="llama", device="cpu") == 1


def test_session_stats_are_counts_and_names_only():
    fields = set(SessionStats.__dataclass_fields__)
    assert fields == {"opened", "layers_scrubbed", "views", "experiments", "closed"}


# ---------------------------------------------------------------------- GET /metrics, real app
def _wait_for(cond, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_metrics_endpoint_after_real_requests_and_no_prompt_text(app, client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        done = traced(ws, prompt=f"The {MARKER} is", req=1)
        assert done["type"] == "done"
        f = ask(ws, {"type": "cell", "req": 2, "trace_id": done["trace_id"], "layer": 0,
                     "position": 0})  # fmt: skip
        assert f["type"] == "cell"
        ws.send_json({"type": "trace", "req": 3, "prompt": MARKER, "generate": -1})  # invalid
        assert ws.receive_json()["code"] == "bad_request"
        ws.send_text(f'{{"type": "{MARKER}", "req": 4}}')
        assert ws.receive_json()["code"] == "bad_request"
        f = ask(ws, {"type": "usage", "req": 5, "layers_scrubbed": 21, "views": ["heads"],
                     "experiments": ["effect"]})  # fmt: skip
        assert f == {"type": "usage_recorded", "req": 5, "layers_scrubbed": 21, "views": 1,
                     "experiments": 1}  # fmt: skip
        r = client.get("/metrics")
        assert families(r.text)["layerscope_connected_clients"].samples[0].value == 1
    m = app.state.ctx.metrics
    _wait_for(lambda: value(m, "layerscope_session_seconds_count") == 1)

    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    text = r.text
    assert MARKER not in text
    fam = families(text)
    for name in [
        "layerscope_requests", "layerscope_request_seconds", "layerscope_errors",
        "layerscope_connected_clients", "layerscope_sessions", "layerscope_session_seconds",
        "layerscope_session_layers_scrubbed", "layerscope_layers_scrubbed",
        "layerscope_views_used", "layerscope_experiments_used", "layerscope_queue_depth",
        "layerscope_worker_busy", "layerscope_stored_results", "layerscope_stored_bytes",
        "layerscope_model_info", "layerscope_process_resident_memory_bytes",
    ]:  # fmt: skip
        assert name in fam, name
    assert value(m, "layerscope_requests_total", type="trace", outcome="ok") == 1
    assert value(m, "layerscope_requests_total", type="cell", outcome="ok") == 1
    assert value(m, "layerscope_requests_total", type="invalid", outcome="bad_request") == 2
    assert value(m, "layerscope_requests_total", type="usage", outcome="ok") == 1
    assert value(m, "layerscope_errors_total", code="bad_request") == 2
    assert value(m, "layerscope_connected_clients") == 0
    assert value(m, "layerscope_session_layers_scrubbed_sum") == 21
    assert value(m, "layerscope_views_used_total", view="heads") == 1
    assert value(m, "layerscope_stored_results") == len(app.state.ctx.store) >= 1
    assert value(m, "layerscope_stored_bytes") == app.state.ctx.store.nbytes > 0
    assert value(m, "layerscope_queue_depth") == 0
    info = app.state.ctx.model.info
    assert value(m, "layerscope_model_info", name=info.name, family=info.family, device="cpu") == 1


def test_every_app_counts_on_its_own(tiny):
    from layerscope.server import create_app
    from server.server_helpers import local_client

    a, b = create_app(tiny), create_app(tiny)
    with local_client(a) as ca, local_client(b) as cb:
        with ca.websocket_connect("/ws") as ws:
            ws.receive_json()
            traced(ws)
        assert "layerscope_requests_total{" in ca.get("/metrics").text
        assert "layerscope_requests_total{" not in cb.get("/metrics").text
