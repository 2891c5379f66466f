"""REST routes and static files."""

from __future__ import annotations


def test_health_and_models(client, tiny):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["model"] == tiny.info.name and h["busy"] is False
    m = client.get("/api/models").json()
    assert m["loaded"]["n_lens_layers"] == tiny.info.n_blocks + 1
    assert m["loaded"]["n_blocks"] == tiny.info.n_blocks
    assert "smollm2-135m" in m["available"]


def test_trace_over_rest_and_fetching_it_back(client):
    r = client.post("/api/trace", json={"prompt": "Hello world", "generate": 2, "lens_top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert {"trace_id", "tokens", "lens", "lock_in", "token_text"} <= set(body)
    again = client.get(f"/api/traces/{body['trace_id']}").json()
    assert again["lens"] == body["lens"]
    assert client.get("/api/traces/t_nothing").status_code == 404
    assert client.get("/api/health").json()["results"] == 1


def test_rest_rejects_bad_input(client):
    assert client.post("/api/trace", json={"prompt": ""}).status_code == 422
    r = client.post("/api/trace", json={"prompt": "word " * 400})
    assert r.status_code == 400 and "context" in r.json()["detail"]
    r = client.post("/api/trace", json={"prompt": "   "})  # passes the schema, not the engine
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    assert client.get("/api/health").json()["status"] == "ok"


def test_page_and_protocol_schema(client):
    page = client.get("/")
    assert page.status_code == 200 and "layerscope" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing loaded from elsewhere
    assert client.get("/static/js/main.js").status_code == 200
    assert client.get("/static/vendor/evil.js").status_code == 404
    schema = client.get("/api/protocol").json()
    assert "trace" in json_text(schema["client"]) and "done" in json_text(schema["server"])
    assert client.get("/openapi.json").status_code == 200


def json_text(x) -> str:
    import json

    return json.dumps(x)
