"""Contract tests: every frame type, its exact fields, and the protocol's error answers."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest

from layerscope.engine.statistics import NAMES
from layerscope.server.handlers import REGISTRY
from layerscope.server.registry import Registry
from server.server_helpers import frames_until_done, local_client

# The wire contract of the frames every connection may see: frame type -> field names. Changing
# one is a protocol change (README). Each request type's own frames are pinned in handlers/.
FIELDS = {
    "hello": {
        "type",
        "session",
        "protocol",
        "model",
        "max_generate",
        "requests",
        "statistics",
        "points",
    },
    "start": {
        "type",
        "req",
        "n_lens_layers",
        "layers",
        "tokens",
        "n_prompt",
        "interventions",
        "vocab",
    },
    "token": {"type", "req", "position", "id", "vocab"},
    "layer": {"type", "req", "layer", *NAMES, "vocab"},
    "done": {
        "type",
        "req",
        "trace_id",
        "tokens",
        "n_prompt",
        "lock_in",
        "timings",
        "bytes_sent",
        "trace_bytes",
    },
    "error": {"type", "req", "code", "message"},
}
LENS_STATISTICS = (
    "top_ids",
    "top_probs",
    "final_rank",
    "final_prob",
    "next_rank",
    "next_prob",
    "entropy",
    "kl_final",
)


def test_core_frame_field_sets_are_pinned():
    classes = REGISTRY.frame_classes()
    assert NAMES == LENS_STATISTICS
    for name, fields in FIELDS.items():
        assert set(classes[name].model_fields) == fields, name


def test_hello_declares_every_request_type_and_its_terminal_frames(client):
    with client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
    assert set(hello) == FIELDS["hello"] and hello["protocol"] == 2
    assert hello["requests"]["trace"] == {
        "streams": True,
        "frames": ["start", "token", "layer", "done"],
        "terminal": ["done"],
    }
    assert set(hello["requests"]) == {t.type for t in REGISTRY}
    assert all(r["terminal"] for r in hello["requests"].values())
    assert [s["name"] for s in hello["statistics"]] == list(NAMES)
    assert set(hello["points"]) >= {"resid_pre", "attn_out", "resid_mid", "mlp_post", "mlp_out"}


def test_trace_stream_order_and_content(client, tiny):
    n_layers = tiny.info.n_blocks + 1
    with client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert hello["model"]["n_lens_layers"] == n_layers
        assert hello["model"]["n_blocks"] == n_layers - 1
        ws.send_json(
            {"type": "trace", "req": 7, "prompt": "Hello world", "generate": 3, "lens_top_k": 4}
        )
        frames = frames_until_done(ws, 7)
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert all(set(f) == FIELDS[f["type"]] for f in frames)
    assert frames[0]["interventions"] == []
    n_tokens = kinds.count("token")
    assert kinds[1 : 1 + n_tokens] == ["token"] * n_tokens and 1 <= n_tokens <= 3
    layer_frames = [f for f in frames if f["type"] == "layer"]
    assert sorted(f["layer"] for f in layer_frames) == list(range(n_layers))
    start, done = frames[0], frames[-1]
    T = len(done["tokens"])
    assert done["tokens"][: start["n_prompt"]] == start["tokens"]
    for f in layer_frames:
        assert len(f["top_ids"]) == T and all(len(r) == 4 for r in f["top_ids"])
        assert f["next_prob"][-1] is None and f["next_rank"][-1] == -1
    # one token table: every id mentioned is explained exactly once over the stream
    seen: dict[str, str] = {}
    for f in frames:
        for k in f.get("vocab", {}):
            assert k not in seen, f"token {k} sent twice"
        seen.update(f.get("vocab", {}))
    mentioned = {str(i) for f in layer_frames for row in f["top_ids"] for i in row}
    assert mentioned | {str(i) for i in done["tokens"]} <= set(seen)
    assert (
        done["bytes_sent"]
        == sum(len(json.dumps(f, separators=(",", ":")).encode()) for f in frames[:-1])
        or done["bytes_sent"] > 0
    )
    assert set(done["timings"]) >= {"lens", "total", "server"}


def test_an_intervention_rides_on_an_ordinary_trace(client, tiny):
    ablate = {"kind": "ablate", "point": "head_out", "block": 1, "heads": [0, 2]}
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json(
            {"type": "trace", "req": 1, "prompt": "Hello world", "interventions": [ablate]}
        )
        frames = frames_until_done(ws, 1)
        assert frames[0]["interventions"][0]["kind"] == "ablate"
        assert frames[-1]["type"] == "done"
        bad = {**ablate, "block": 99}
        ws.send_json({"type": "trace", "req": 2, "prompt": "Hello", "interventions": [bad]})
        f = ws.receive_json()
        assert f["type"] == "error" and f["code"] == "bad_request" and "block 99" in f["message"]


@pytest.mark.parametrize(
    ("msg", "code", "words"),
    [
        ({"type": "trace", "req": 1, "prompt": ""}, "bad_request", "prompt"),
        ({"type": "trace", "req": 1, "prompt": "x", "generate": 100000}, "bad_request", "generate"),
        ({"type": "nope", "req": 1}, "bad_request", "invalid request"),
        (
            {"type": "heads", "req": 1, "trace_id": "t_missing", "position": 0},
            "not_found",
            "run the trace again",
        ),
        ({"type": "trace", "req": 1, "prompt": "word " * 400}, "bad_request", "context"),
        (
            {"type": "patch_sweep", "req": 1, "clean": "Hello", "corrupted": "Hello world"},
            "bad_request",
            "same number of tokens",
        ),
        ({"type": "trace", "req": 1, "ids": [1, 2], "prompt": "x"}, "bad_request", "either"),
        (
            {"type": "trace", "req": 1, "prompt": "x", "interventions": [{"kind": "melt"}]},
            "bad_request",
            "interventions",
        ),
    ],
)
def test_bad_requests_get_clear_errors_and_the_connection_survives(client, msg, code, words):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json(msg)
        f = ws.receive_json()
        assert f["type"] == "error" and f["code"] == code and f["req"] == 1
        assert words in f["message"]
        ws.send_text("{not json")
        assert ws.receive_json()["code"] == "bad_request"
        ws.send_json({"type": "trace", "req": 2, "prompt": "Hello"})
        assert frames_until_done(ws, 2)[-1]["type"] == "done"
    assert client.get("/api/health").json()["status"] == "ok"


def test_busy_answer_only_past_the_clients_own_limit(tiny):
    from layerscope.server import create_app
    from layerscope.server.limits import Limits

    gate = threading.Event()
    real = REGISTRY["early_exit"]

    def slow(ctx, msg):
        gate.wait(10)
        return real.handler(ctx, msg)

    registry = Registry([*(t for t in REGISTRY if t is not real), replace(real, handler=slow)])
    app = create_app(tiny, limits=Limits(client_pending=1), registry=registry)
    with (
        local_client(app) as c,
        c.websocket_connect("/ws") as ws,
        c.websocket_connect("/ws") as other,
    ):
        ws.receive_json()
        other.receive_json()
        ws.send_json({"type": "early_exit", "req": 1, "prompt": "Hello", "layer": 1, "generate": 1})
        ws.send_json({"type": "trace", "req": 2, "prompt": "Hello"})
        f = ws.receive_json()
        assert (f["type"], f["code"], f["req"]) == ("error", "busy", 2)
        assert "client_pending" in f["message"]
        other.send_json({"type": "trace", "req": 7, "prompt": "Hello"})  # another client: queued
        gate.set()
        assert ws.receive_json()["type"] == "early_exit"
        assert frames_until_done(other, 7)[-1]["type"] == "done"
        ws.send_json({"type": "trace", "req": 3, "prompt": "Hello"})
        assert frames_until_done(ws, 3)[-1]["type"] == "done"
