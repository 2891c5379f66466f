"""The ``ask`` request (ask_sources, ask_delta…, ask_done) and the Learn REST routes.

The knowledge base is a small one in a temporary directory; the model is the tiny one (whose
128-token context cannot hold the sources, so it falls back to an extractive answer); the
endpoint path runs against a fake OpenAI-compatible server on loopback.
"""

from __future__ import annotations

import json

import pytest

from layerscope.learn import kb
from learn.conftest import write_docs
from learn.fake_openai import FakeOpenAI
from server.server_helpers import frames_until_done

SOURCE = {"doc", "title", "heading", "anchor", "text", "score"}
SOURCES = {"type", "req", "sources"}
DELTA = {"type", "req", "text", "replace"}
DONE = {"type", "req", "answer", "sources", "mode", "note"}
KEY = "sk-never-in-a-frame-42"
QUESTION = "What does an induction head do?"


@pytest.fixture(autouse=True)
def knowledge_base(tmp_path, monkeypatch):
    content = tmp_path / "content"
    write_docs(content / "docs")
    (content / "glossary.json").write_text(
        json.dumps({"terms": [{"id": "ablation", "term": "Ablation", "short": "Turn it off."}]})
    )
    monkeypatch.setattr(kb, "CONTENT_DIR", content)
    monkeypatch.setattr(kb, "DOCS_DIR", content / "docs")
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path / "cache"))
    for var in ("LAYERSCOPE_CHAT_URL", "LAYERSCOPE_CHAT_MODEL", "LAYERSCOPE_CHAT_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return content


def asked(ws, req=5, **fields):
    msg = {"type": "ask", "req": req, "question": QUESTION, **fields}
    ws.send_json(msg)
    return frames_until_done(ws, req)


def check_frames(frames):
    first, *deltas, done = frames
    assert first["type"] == "ask_sources" and set(first) == SOURCES
    assert all(f["type"] == "ask_delta" and set(f) == DELTA for f in deltas)
    assert done["type"] == "ask_done" and set(done) == DONE
    assert done["sources"] == first["sources"] and all(set(s) == SOURCE for s in first["sources"])
    return first, deltas, done


def test_retrieve_only_answers_from_the_passages(ws):
    frames = asked(ws, retrieve_only=True)
    first, deltas, done = check_frames(frames)
    assert first["sources"][0]["doc"] == "attention"
    assert first["sources"][0]["anchor"].startswith("induction-heads")
    assert done["mode"] == "extractive" and done["answer"] == "".join(d["text"] for d in deltas)
    assert "[1]" in done["answer"]


def test_the_loaded_model_is_asked_and_the_tiny_one_falls_back(ws):
    context = {
        "model": "tiny-llama",
        "prompt": "A B A",
        "view": "heatmap",
        "layer": 1,
        "interventions": [],
        "trace_id": "ignored extra field",
    }
    history = [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello"}]
    frames = asked(ws, context=context, history=history)
    _, deltas, done = check_frames(frames)
    assert done["mode"] == "extractive" and "context" in done["note"]
    assert deltas[-1]["replace"] and deltas[-1]["text"] == done["answer"]


def test_the_endpoint_streams_and_its_key_never_reaches_the_page(ws, monkeypatch):
    reply = ["An induction head finds an earlier copy ", "of the current token [1]."]
    with FakeOpenAI(reply) as fake:
        monkeypatch.setenv("LAYERSCOPE_CHAT_URL", fake.url)
        monkeypatch.setenv("LAYERSCOPE_CHAT_MODEL", "remote-model")
        monkeypatch.setenv("LAYERSCOPE_CHAT_API_KEY", KEY)
        req = 9
        ws.send_json({"type": "ask", "req": req, "question": QUESTION})
        raw = []
        while True:
            text = ws.receive_text()
            raw.append(text)
            f = json.loads(text)
            if f.get("req") == req and f["type"] in ("ask_done", "error"):
                break
    frames = [json.loads(t) for t in raw if json.loads(t).get("req") == req]
    _, deltas, done = check_frames(frames)
    assert [d["text"] for d in deltas] == reply
    assert done["mode"] == "endpoint" and done["answer"] == "".join(reply)
    assert all(KEY not in t for t in raw)
    assert fake.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert fake.requests[0]["body"]["model"] == "remote-model"


def test_bad_questions_are_errors_and_the_connection_stays_usable(ws):
    ws.send_json({"type": "ask", "req": 3, "question": ""})
    assert frames_until_done(ws, 3)[-1]["code"] == "bad_request"
    ws.send_json({"type": "ask", "req": 4, "question": "x", "history": [{"role": "system"}]})
    assert frames_until_done(ws, 4)[-1]["code"] == "bad_request"
    assert asked(ws, req=6, retrieve_only=True)[-1]["type"] == "ask_done"


def test_hello_declares_ask(client):
    with client.websocket_connect("/ws") as sock:
        hello = sock.receive_json()
    assert hello["requests"]["ask"] == {
        "streams": True,
        "frames": ["ask_sources", "ask_delta", "ask_done"],
        "terminal": ["ask_done"],
    }


def test_docs_routes(client):
    listing = client.get("/api/docs").json()
    assert listing == [
        {"slug": "ablation", "title": "Ablation"},
        {"slug": "attention", "title": "Attention heads"},
        {"slug": "logit-lens", "title": "The logit lens"},
        {"slug": "sampling", "title": "Choosing the next token"},
    ]
    doc = client.get("/api/docs/attention").json()
    assert doc["title"] == "Attention heads" and doc["markdown"].startswith("# Attention heads")
    assert {"level": 2, "text": "Induction heads", "anchor": "induction-heads"} in doc["headings"]
    assert doc["headings"][-1]["anchor"] == "induction-heads-1"
    for bad in ("nope", "..%2Fdocs%2Fattention", "attention.md", "%2Fetc%2Fpasswd"):
        assert client.get(f"/api/docs/{bad}").status_code == 404, bad


def test_glossary_and_tours(client, knowledge_base):
    assert client.get("/api/glossary").json()["terms"][0]["id"] == "ablation"
    assert client.get("/api/tours").status_code == 404
    (knowledge_base / "tours.json").write_text(json.dumps({"tours": [{"id": "first"}]}))
    assert client.get("/api/tours").json() == {"tours": [{"id": "first"}]}
    (knowledge_base / "glossary.json").unlink()
    assert client.get("/api/glossary").json() == {"terms": []}
