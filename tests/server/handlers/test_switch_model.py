"""``switch_model``: one model at a time, switched without a restart; every client is told."""

from __future__ import annotations

import pytest

from layerscope.server import create_app
from layerscope.server.models import LoaderModels
from server.server_helpers import ask, frames_until_done, local_client, traced
from tiny import tiny_model

MODEL_FIELDS = {"type", "req", "model", "previous", "dropped", "load_seconds"}
GEMMA_HINT = "not fetched: run `layerscope fetch gemma3-270m`"


def _broken():
    raise RuntimeError("weights damaged")


@pytest.fixture
def models():
    loaders = {
        "tiny-llama": lambda: tiny_model("llama"),
        "tiny-gpt2": lambda: tiny_model("gpt2"),
        "broken": _broken,
    }
    return LoaderModels(loaders, missing={"gemma3-270m": GEMMA_HINT})


@pytest.fixture
def client(models):
    with local_client(create_app(tiny_model("llama"), models=models)) as c:
        yield c


def _switch(ws, name: str, req: int = 50) -> dict:
    return ask(ws, {"type": "switch_model", "req": req, "name": name})


def _greedy(family: str, prompt: str, n: int) -> list[int]:
    return [int(i) for i in tiny_model(family).trace(prompt, generate=n).ids]


def test_models_lists_what_can_be_loaded_and_why_not(client):
    body = client.get("/api/models").json()
    assert body["loaded"]["name"] == "tiny-llama"
    assert body["available"] == ["tiny-llama", "tiny-gpt2", "broken"]
    rows = {r["name"]: r for r in body["models"]}
    assert set(rows["gemma3-270m"]) == {"name", "description", "available", "reason", "loaded"}
    assert rows["gemma3-270m"]["available"] is False
    assert rows["gemma3-270m"]["reason"] == GEMMA_HINT
    assert rows["tiny-llama"]["loaded"] is True and rows["tiny-gpt2"]["loaded"] is False
    assert rows["tiny-gpt2"]["reason"] is None


def test_a_switch_answers_the_requester_and_tells_every_other_client(client):
    with client.websocket_connect("/ws") as ws, client.websocket_connect("/ws") as other:
        assert ws.receive_json()["model"]["name"] == "tiny-llama"
        other.receive_json()
        old = traced(ws)["trace_id"]
        f = _switch(ws, "tiny-gpt2", req=7)
        assert set(f) == MODEL_FIELDS and f["type"] == "model" and f["req"] == 7
        assert f["model"]["name"] == "tiny-gpt2" and f["previous"] == "tiny-llama"
        assert f["dropped"] == 1 and f["load_seconds"] >= 0
        notice = other.receive_json()  # unasked: req is null
        assert notice == {**f, "req": None}
        # the old model's traces are gone; a new trace runs on the new model
        gone = ask(ws, {"type": "cell", "req": 8, "trace_id": old, "layer": 0, "position": 0})
        assert gone["type"] == "error" and gone["code"] == "not_found"
        assert client.get("/api/health").json()["model"] == "tiny-gpt2"
        assert client.get("/api/models").json()["loaded"]["name"] == "tiny-gpt2"
    with client.websocket_connect("/ws") as fresh:  # a new connection's hello names it too
        assert fresh.receive_json()["model"]["name"] == "tiny-gpt2"


def test_token_texts_are_sent_again_after_a_switch(client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "trace", "req": 1, "prompt": "Hello world"})
        first = frames_until_done(ws, 1)[0]
        assert first["type"] == "start" and first["vocab"]
        _switch(ws, "tiny-gpt2")
        ws.send_json({"type": "trace", "req": 2, "prompt": "Hello world"})
        again = frames_until_done(ws, 2)[0]
        # the same ids come with their (new) texts again: the client's table starts over
        assert set(again["vocab"]) == {str(i) for i in again["tokens"]}


def test_requests_sent_before_a_switch_finish_on_the_old_model(client):
    prompt, n = "The capital of France is", 6
    on_llama, on_gpt2 = _greedy("llama", prompt, n), _greedy("gpt2", prompt, n)
    assert on_llama != on_gpt2  # the two tiny models write different continuations
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "trace", "req": 1, "prompt": prompt, "generate": n})
        ws.send_json({"type": "switch_model", "req": 2, "name": "tiny-gpt2"})
        ws.send_json({"type": "trace", "req": 3, "prompt": prompt, "generate": n})
        before = frames_until_done(ws, 1)[-1]
        switched = frames_until_done(ws, 2)[-1]
        after = frames_until_done(ws, 3)[-1]
    assert before["type"] == "done" and before["tokens"] == on_llama
    assert switched["type"] == "model" and switched["dropped"] == 1  # req 1's trace
    assert after["type"] == "done" and after["tokens"] == on_gpt2


def test_a_failed_load_keeps_the_old_model_and_its_traces(client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        kept = traced(ws)["trace_id"]
        f = _switch(ws, "broken")
        assert f["type"] == "error" and f["code"] == "bad_request"
        assert "could not load broken" in f["message"] and "weights damaged" in f["message"]
        assert "still serving tiny-llama" in f["message"]
        cell = ask(ws, {"type": "cell", "req": 9, "trace_id": kept, "layer": 0, "position": 0})
        assert cell["type"] == "cell"
        assert traced(ws, req=10)["type"] == "done"
    assert client.get("/api/health").json()["model"] == "tiny-llama"


def test_unknown_and_unavailable_names_are_refused_clearly(client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        f = _switch(ws, "no-such-model")
        assert f["code"] == "bad_request"
        assert f["message"].startswith("unknown model 'no-such-model': this server can switch to")
        assert "tiny-gpt2" in f["message"]
        f = _switch(ws, "gemma3-270m")
        assert f["code"] == "bad_request" and GEMMA_HINT in f["message"]
        f = _switch(ws, "")
        assert f["code"] == "bad_request" and f["message"].startswith("invalid request")
        assert traced(ws)["type"] == "done"  # still serving


def test_switching_to_the_loaded_model_changes_nothing(client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        kept = traced(ws)["trace_id"]
        f = _switch(ws, "tiny-llama")
        assert f["type"] == "model" and f["previous"] == "tiny-llama" and f["dropped"] == 0
        cell = ask(ws, {"type": "cell", "req": 9, "trace_id": kept, "layer": 0, "position": 0})
        assert cell["type"] == "cell"


def test_rest_traces_run_on_the_model_served_when_they_run(client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        _switch(ws, "tiny-gpt2")
    body = client.post("/api/trace", json={"prompt": "The capital of France is", "generate": 6})
    assert body.status_code == 200
    ids = [t["id"] for t in body.json()["tokens"]]
    assert ids == _greedy("gpt2", "The capital of France is", 6)


def test_the_default_source_is_the_catalog(tmp_path, monkeypatch):
    """Catalog entries found on disk can be switched to; missing ones say how to get them."""
    from layerscope.models import catalog
    from layerscope.models.hf import load_hf_directory
    from tiny import save_tiny

    path = save_tiny("qwen2", tmp_path / "tiny-qwen2")
    entries = {
        "tiny-qwen2": catalog.CatalogEntry(
            name="tiny-qwen2",
            description="a tiny Qwen2 on disk",
            loader=lambda device, step: load_hf_directory(path, device=device, name="tiny-qwen2"),
            locate=lambda: path,
            how_to_get="save it",
        ),
        "elsewhere": catalog.CatalogEntry(
            name="elsewhere",
            description="weights this machine lacks",
            loader=lambda device, step: pytest.fail("never loaded"),
            locate=lambda: None,
            how_to_get="layerscope fetch elsewhere",
            missing="not fetched",
        ),
    }
    monkeypatch.setattr(catalog, "CATALOG", entries)
    with local_client(create_app(tiny_model("llama"))) as client:
        body = client.get("/api/models").json()
        assert body["available"] == ["tiny-qwen2"]
        missing = body["models"][1]
        assert missing["reason"] == "not fetched: run `layerscope fetch elsewhere`"
        with client.websocket_connect("/ws") as ws:
            ws.receive_json()
            refused = _switch(ws, "elsewhere")
            assert refused["code"] == "bad_request" and missing["reason"] in refused["message"]
            f = _switch(ws, "tiny-qwen2")
            assert f["type"] == "model" and f["model"]["family"] == "qwen2"
            assert traced(ws, req=60)["type"] == "done"
        assert client.get("/api/models").json()["models"][0]["loaded"] is True
