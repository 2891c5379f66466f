"""``usage``: the page's usage report — counted per session, validated (ids only, never text), and
answered on the event loop even while the model worker is busy."""

from __future__ import annotations

import threading
from typing import Literal

import pytest

from layerscope.server import create_app
from layerscope.server.context import RequestContext, ServerContext, VocabTracker
from layerscope.server.handlers import REGISTRY
from layerscope.server.handlers.usage import (
    UsageRecordedFrame,
    UsageRequest,
    experiment_names,
    usage,
)
from layerscope.server.metrics import SessionStats
from layerscope.server.registry import RequestType
from layerscope.server.schemas import Frame, Request
from server.server_helpers import ask, local_client

FIELDS = {"type", "req", "layers_scrubbed", "views", "experiments"}


def _ctx(tiny, stats: SessionStats | None) -> RequestContext:
    server = ServerContext(model=tiny)
    return RequestContext(
        server=server, session="s" * 12, req=1, vocabulary=VocabTracker(server),
        send=lambda _: None, stats=stats,
    )  # fmt: skip


def test_handler_adds_to_the_session(tiny):
    stats = SessionStats()
    ctx = _ctx(tiny, stats)
    m = ctx.server.metrics
    f = usage(ctx, UsageRequest(req=4, layers_scrubbed=9, views=["heads", "heads"]))
    assert f == UsageRecordedFrame(req=4, layers_scrubbed=9, views=1, experiments=0)
    f = usage(ctx, UsageRequest(req=5, layers_scrubbed=3, views=["ablation"],
                                experiments=["effect", "trace_ablate"]))  # fmt: skip
    assert (f.layers_scrubbed, f.views, f.experiments) == (12, 2, 2)
    assert stats.views == {"heads", "ablation"} and stats.experiments == {"effect", "trace_ablate"}
    assert m.registry.get_sample_value("layerscope_layers_scrubbed_total") == 12
    assert m.registry.get_sample_value("layerscope_views_used_total", {"view": "heads"}) == 1


def test_without_a_session_nothing_is_recorded(tiny):
    ctx = _ctx(tiny, None)  # e.g. a REST caller
    f = usage(ctx, UsageRequest(req=1, layers_scrubbed=50, views=["heads"]))
    assert (f.layers_scrubbed, f.views, f.experiments) == (0, 0, 0)
    assert ctx.server.metrics.registry.get_sample_value("layerscope_layers_scrubbed_total") == 0


def test_experiments_are_request_types_or_intervention_runs():
    names = experiment_names()
    assert {"effect", "steer_sweep", "compare", "patch_sweep", "beams", "attribute"} <= names
    assert {"trace_ablate", "trace_steer", "trace_patch"} <= names
    assert "usage" not in names


def test_registered_inline_with_its_own_frame():
    rt = REGISTRY["usage"]
    assert rt.lane == "inline" and not rt.streams
    assert REGISTRY.frame_classes()["usage_recorded"] is UsageRecordedFrame


def test_reports_add_up_over_the_socket(client):
    with client.websocket_connect("/ws") as ws:
        assert "usage" in ws.receive_json()["requests"]
        msg = {"type": "usage", "req": 1, "layers_scrubbed": 20, "views": ["heatmap", "heads"]}
        assert ask(ws, msg, FIELDS)["layers_scrubbed"] == 20
        msg = {"type": "usage", "req": 2, "layers_scrubbed": 5, "views": ["heads"],
               "experiments": ["effect"]}  # fmt: skip
        f = ask(ws, msg, FIELDS)
        assert (f["layers_scrubbed"], f["views"], f["experiments"]) == (25, 2, 1)
        assert ask(ws, {"type": "usage", "req": 3}, FIELDS)["layers_scrubbed"] == 25  # empty: ok


@pytest.mark.parametrize(
    "fields",
    [
        {"views": ["Heads"]},
        {"views": ["heads view"]},
        {"views": ["<img src=x onerror=alert(1)>"]},
        {"views": ["heads\n"]},
        {"views": ["a" * 41]},
        {"views": [""]},
        {"views": [7]},
        {"views": "heads"},
        {"views": [f"v{i}" for i in range(65)]},
        {"experiments": ["The capital of France is"]},
        {"experiments": ["not_a_request"]},  # well-formed, but no such experiment
        {"layers_scrubbed": -1},
        {"layers_scrubbed": 100_001},
        {"layers_scrubbed": 2.5},
        {"layers_scrubbed": "3"},
        {"layers_scrubbed": True},
        {"prompt": "The capital of France is"},
    ],
)
def test_bad_reports_refused_and_nothing_counted(app, client, fields):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        f = ask(ws, {"type": "usage", "req": 1, **fields})
        assert f["type"] == "error" and f["code"] == "bad_request" and f["req"] == 1
        assert ask(ws, {"type": "usage", "req": 2, "views": ["heads"]}, FIELDS)["views"] == 1
    m = app.state.ctx.metrics
    assert m.registry.get_sample_value("layerscope_layers_scrubbed_total") == 0
    text = client.get("/metrics").text
    assert "Heads" not in text and "capital" not in text and "not_a_request" not in text


class _HoldRequest(Request):
    type: Literal["test_hold"] = "test_hold"


class _HeldFrame(Frame):
    type: Literal["test_held"] = "test_held"
    req: int


def test_answered_while_the_model_worker_is_busy(tiny):
    release, started = threading.Event(), threading.Event()

    def hold(ctx, msg):
        started.set()
        release.wait(30)
        return _HeldFrame(req=msg.req)

    registry = REGISTRY.copy()
    registry.add(RequestType(_HoldRequest, (_HeldFrame,), (_HeldFrame,), hold))
    app = create_app(tiny, registry=registry)
    with local_client(app) as c, c.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "test_hold", "req": 1})
        assert started.wait(10)
        try:
            msg = {"type": "usage", "req": 2, "layers_scrubbed": 3}
            f = ask(ws, msg, FIELDS)  # the first frame back, while the worker still holds
            assert f["layers_scrubbed"] == 3
        finally:
            release.set()
        assert ws.receive_json() == {"type": "test_held", "req": 1}
