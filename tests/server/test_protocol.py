"""Contract tests: every frame type, its exact fields, and the protocol's error answers."""

from __future__ import annotations

import json
import threading

import pytest

from layerscope.server import jobs
from layerscope.server import schemas as S

# The wire contract: frame type -> field names. Changing one is a protocol change (README).
FIELDS = {
    "hello": {"type", "session", "model", "max_generate"},
    "start": {"type", "req", "n_layers", "layers", "tokens", "n_prompt", "vocab", "patched"},
    "token": {"type", "req", "position", "id", "vocab"},
    "layer": {
        "type",
        "req",
        "layer",
        "top_ids",
        "top_probs",
        "final_rank",
        "final_prob",
        "next_rank",
        "next_prob",
        "entropy",
        "kl_final",
        "vocab",
    },
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
    "heads": {"type", "req", "trace_id", "position", "target_id", "contrib", "top_ids", "vocab"},
    "cell": {"type", "req", "trace_id", "layer", "position", "ids", "probs", "vocab"},
    "pca": {"type", "req", "trace_id", "positions", "coords", "explained"},
    "patch": {
        "type",
        "req",
        "patch_id",
        "clean",
        "corrupted",
        "answer_id",
        "p_clean",
        "p_corrupted",
        "prob",
        "restored",
        "vocab",
    },
    "early_exit": {"type", "req", "layer", "n_layers", "prompt", "early", "full", "vocab"},
}


def frames_until_done(ws, req: int) -> list[dict]:
    out = []
    while True:
        f = ws.receive_json()
        S.server_frame.validate_python(f)  # every frame obeys its schema
        assert set(f) == FIELDS[f["type"]], f["type"]
        if f.get("req") == req:
            out.append(f)
        if f["type"] in ("done", "error") and f.get("req") == req:
            return out


def test_schema_field_sets_are_pinned():
    classes = S.ServerFrame.__args__[0].__args__  # the union's members
    assert {c.model_fields["type"].default: set(c.model_fields) for c in classes} == FIELDS


def test_trace_stream_order_and_content(client, tiny):
    n_layers = tiny.info.n_layers + 1
    with client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert set(hello) == FIELDS["hello"] and hello["model"]["n_layers"] == n_layers
        assert hello["model"]["n_blocks"] == n_layers - 1
        ws.send_json(
            {"type": "trace", "req": 7, "prompt": "Hello world", "generate": 3, "lens_top_k": 4}
        )
        frames = frames_until_done(ws, 7)
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "start" and kinds[-1] == "done"
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


def test_follow_up_requests_on_a_trace(client, tiny):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "trace", "req": 1, "prompt": "The capital of France is"})
        done = frames_until_done(ws, 1)[-1]
        tid, T = done["trace_id"], len(done["tokens"])

        def ask(msg):
            ws.send_json(msg)
            f = ws.receive_json()
            assert set(f) == FIELDS[f["type"]]
            S.server_frame.validate_python(f)
            return f

        heads = ask({"type": "heads", "req": 2, "trace_id": tid, "position": T - 1, "k": 3})
        assert len(heads["contrib"]) == tiny.info.n_layers
        assert len(heads["contrib"][0]) == tiny.info.n_heads
        cell = ask({"type": "cell", "req": 3, "trace_id": tid, "layer": 1, "position": 0, "k": 8})
        assert len(cell["ids"]) == 8 and cell["probs"] == sorted(cell["probs"], reverse=True)
        pca = ask({"type": "pca", "req": 4, "trace_id": tid, "positions": [0, T - 1]})
        assert len(pca["coords"]) == tiny.info.n_layers + 1
        ee = ask({"type": "early_exit", "req": 5, "prompt": "Hello", "layer": 1, "generate": 3})
        assert len(ee["early"]) == 3 and len(ee["full"]) == 3
        patch = ask({"type": "patch", "req": 6, "clean": "Hello world", "corrupted": "Hello world"})
        assert patch["p_clean"] == pytest.approx(patch["p_corrupted"], abs=1e-4)
        ws.send_json(
            {
                "type": "patched_trace",
                "req": 8,
                "patch_id": patch["patch_id"],
                "layer": 1,
                "position": 0,
            }
        )
        frames = frames_until_done(ws, 8)
        assert frames[0]["patched"] == [1, 0] and frames[-1]["type"] == "done"


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
            {"type": "patch", "req": 1, "clean": "Hello", "corrupted": "Hello world"},
            "bad_request",
            "same number of tokens",
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


def test_busy_answer_past_the_queue_bound(tiny, monkeypatch):
    from fastapi.testclient import TestClient

    from layerscope.server import create_app

    gate = threading.Event()
    real = jobs.answer

    def slow(conn, msg):
        gate.wait(10)
        return real(conn, msg)

    monkeypatch.setattr(jobs, "answer", slow)
    with TestClient(create_app(tiny, max_pending=0)) as c, c.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "early_exit", "req": 1, "prompt": "Hello", "layer": 1, "generate": 1})
        ws.send_json({"type": "trace", "req": 2, "prompt": "Hello"})
        f = ws.receive_json()
        assert (f["type"], f["code"], f["req"]) == ("error", "busy", 2)
        assert "busy" in f["message"]
        gate.set()
        assert ws.receive_json()["type"] == "early_exit"
        ws.send_json({"type": "trace", "req": 3, "prompt": "Hello"})
        assert frames_until_done(ws, 3)[-1]["type"] == "done"
