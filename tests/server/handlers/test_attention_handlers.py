"""The attention requests: one head's pattern (windowed), head role scores, the induction probe."""

from __future__ import annotations

import numpy as np
import pytest

from server.server_helpers import ask, traced

PATTERN = {"type", "req", "trace_id", "block", "head", "start", "end", "n_tokens", "pattern"}
HEAD_STATS = {"type", "req", "trace_id", "n_tokens", "stats", "thresholds", "roles"}
PROBE = {
    "type",
    "req",
    "n_tokens",
    "seed",
    "ids",
    "stats",
    "thresholds",
    "roles",
    "top",
    "median",
    "vocab",
}
STATS = {"previous_token", "duplicate_token", "induction", "first_token", "entropy"}


def test_attention_pattern_whole_and_windowed(ws, tiny):
    done = traced(ws, "Hello world! How are you today?")
    T = len(done["tokens"])
    msg = {
        "type": "attention_pattern",
        "req": 2,
        "trace_id": done["trace_id"],
        "block": 1,
        "head": 0,
    }
    f = ask(ws, msg, PATTERN)
    pat = np.array(f["pattern"])
    assert pat.shape == (T, T) and (f["start"], f["end"], f["n_tokens"]) == (0, T, T)
    np.testing.assert_allclose(pat.sum(axis=1), 1, atol=1e-3)  # rows are distributions
    assert np.allclose(np.triu(pat, 1), 0)  # causal
    w = ask(ws, {**msg, "req": 3, "start": 2, "end": 5}, PATTERN)
    np.testing.assert_allclose(np.array(w["pattern"]), pat[2:5, 2:5], atol=1e-4)
    for bad in (
        {"block": tiny.info.n_blocks},
        {"head": 99},
        {"start": 4, "end": 3},
        {"end": T + 1},
    ):
        e = ask(ws, {**msg, "req": 4, **bad})
        assert e["type"] == "error" and e["code"] == "bad_request", bad
    e = ask(ws, {**msg, "req": 5, "trace_id": "t_nope"})
    assert e["type"] == "error" and e["code"] == "not_found"


def test_head_stats(ws, tiny):
    done = traced(ws, "1 2 3 1 2 3 1 2 3")
    f = ask(ws, {"type": "head_stats", "req": 2, "trace_id": done["trace_id"]}, HEAD_STATS)
    assert set(f["stats"]) >= STATS and f["n_tokens"] == len(done["tokens"])
    for name in STATS:
        a = np.array(f["stats"][name])
        assert a.shape == (tiny.info.n_blocks, tiny.info.n_heads), name
    assert set(f["roles"]) == set(f["thresholds"]) and "entropy" not in f["roles"]
    for role, heads in f["roles"].items():  # derived from the scores by the stated thresholds
        scores = np.array(f["stats"][role])
        assert {tuple(bh) for bh in heads} == {
            (b, h) for b, h in zip(*np.nonzero(scores >= f["thresholds"][role]), strict=True)
        }


def test_induction_probe(ws, tiny):
    f = ask(ws, {"type": "induction_probe", "req": 3, "n_tokens": 12, "seed": 1}, PROBE)
    n = 12
    body = f["ids"][-2 * n :]
    assert body[:n] == body[n:] and len(f["ids"]) in (2 * n, 2 * n + 1)
    scores = np.array(f["stats"]["induction"])
    assert scores.shape == (tiny.info.n_blocks, tiny.info.n_heads)
    top = [(t["block"], t["head"], t["score"]) for t in f["top"]]
    assert [s for *_, s in top] == sorted((s for *_, s in top), reverse=True)
    assert top[0][2] == pytest.approx(scores.max(), abs=1e-4)
    assert f["median"] == pytest.approx(float(np.median(scores)), abs=1e-4)
    again = ask(ws, {"type": "induction_probe", "req": 4, "n_tokens": 12, "seed": 1}, PROBE)
    assert again["ids"] == f["ids"]  # seeded
    bad = ask(ws, {"type": "induction_probe", "req": 5, "n_tokens": 1})
    assert bad["type"] == "error" and bad["code"] == "bad_request"


def test_bertviz_pages_load_only_from_this_server(client, tiny):
    tid = client.post("/api/trace", json={"prompt": "Hello world! How are you?"}).json()["trace_id"]
    for view in ("head", "model"):
        r = client.get(f"/bertviz/{tid}", params={"view": view, "layers": "0,1", "heads": "0"})
        assert r.status_code == 200, r.text
        page = r.text
        assert "cdnjs" not in page and "https://" not in page.split("<body>")[1].split("*/", 1)[-1]
        assert '<script src="/static/vendor/require.js">' in page
        assert "'/static/vendor/d3.min'" in page and "'/static/vendor/jquery.min'" in page
        assert 'id="bertviz-' in page
    for name in ("require.js", "d3.min.js", "jquery.min.js"):
        assert client.get(f"/static/vendor/{name}").status_code == 200
    assert client.get(f"/bertviz/{tid}", params={"start": 3, "end": 2}).status_code == 400
    assert client.get(f"/bertviz/{tid}", params={"layers": "99"}).status_code == 400
    missing = client.get("/bertviz/t_nope")
    assert missing.status_code == 404 and "run it again" in missing.text


def test_bertviz_refuses_too_many_tokens_at_once(client, monkeypatch):
    from layerscope.server import bertviz

    monkeypatch.setattr(bertviz, "MAX_TOKENS", 8)  # the tiny model's context is 128 tokens
    tid = client.post("/api/trace", json={"ids": list(range(10, 22))}).json()["trace_id"]
    r = client.get(f"/bertviz/{tid}", params={"start": 0, "end": 9})
    assert r.status_code == 400 and "too slow" in r.text
    assert client.get(f"/bertviz/{tid}", params={"start": 2}).status_code == 200  # 2..10
