"""Structured logs: JSON lines with the request id, from a real app's requests, never a prompt."""

from __future__ import annotations

import io
import json
import logging

import pytest

from layerscope.server import logs

MARKER = "zqxjlogmarker"  # a prompt no log line may ever mention


@pytest.fixture
def captured():
    """The server logs as ``logs.configure(json=True)`` writes them; the logger restored after."""
    logger = logging.getLogger("layerscope.server")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    out = io.StringIO()
    logs.configure(json=True, stream=out)
    yield out
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_log_request_is_one_json_object_with_its_fields(captured):
    logs.log_request("c7.3", "sessionABC123", "heads", "ok", 0.01234567)
    (rec,) = lines(captured)
    assert rec["event"] == "request" and rec["level"] == "INFO"
    assert rec["request_id"] == "c7.3" and rec["session"] == "sessionABC123"
    assert rec["type"] == "heads" and rec["outcome"] == "ok" and rec["seconds"] == 0.012346
    assert rec["ts"].endswith("Z") and rec["logger"] == "layerscope.server"
    assert set(rec) == {"ts", "level", "logger", "event", "message", *logs.FIELDS}


def test_exceptions_keep_one_line_with_the_traceback(captured):
    log = logging.getLogger("layerscope.server.anything")  # children write through it too
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("request c1.2 (trace) failed")
    out = captured.getvalue()
    assert out.count("\n") == 1
    (rec,) = lines(captured)
    assert rec["level"] == "ERROR" and rec["event"] == "request c1.2 (trace) failed"
    assert "Traceback" in rec["exc"] and "RuntimeError: boom" in rec["exc"]
    assert "request_id" not in rec  # only fields the record carries


def test_configure_replaces_its_handler_and_writes_text_when_asked(captured):
    logger = logging.getLogger("layerscope.server")
    out = io.StringIO()
    logs.configure(json=False, stream=out)
    assert sum(getattr(h, "_layerscope", False) for h in logger.handlers) == 1
    logs.log_request("c1.1", "s", "cell", "busy", 0.5)
    assert captured.getvalue() == ""  # the JSON handler is gone
    line = out.getvalue().strip()
    assert line.endswith("layerscope.server: request c1.1 cell busy 0.5000s")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_a_real_session_logs_each_request_with_its_id_and_no_prompt(client, captured):
    with client.websocket_connect("/ws") as ws:
        session = ws.receive_json()["session"]
        ws.send_json({"type": "trace", "req": 1, "prompt": f"The {MARKER} is"})
        while ws.receive_json()["type"] != "done":
            pass
        ws.send_json({"type": "trace", "req": 2, "prompt": MARKER, "generate": -5})
        assert ws.receive_json()["code"] == "bad_request"
    text = captured.getvalue()
    assert MARKER not in text
    requests = [r for r in lines(captured) if r["event"] == "request"]
    by_outcome = {r["outcome"]: r for r in requests}
    ok, bad = by_outcome["ok"], by_outcome["bad_request"]
    assert ok["type"] == "trace" and ok["request_id"].endswith(".1") and ok["seconds"] > 0
    assert bad["type"] == "invalid" and bad["request_id"].endswith(".2")
    assert ok["request_id"].split(".")[0] == bad["request_id"].split(".")[0]  # one connection
    assert ok["session"] == bad["session"] == session


@pytest.mark.parametrize(("argv", "json_logs"), [([], False), (["--log-json"], True)])
def test_serve_flag_chooses_json_logs(monkeypatch, argv, json_logs):
    import layerscope.server
    from layerscope.cli import main

    seen = {}
    monkeypatch.setattr(layerscope.server, "serve", lambda *a, **k: seen.update(k))
    assert main(["serve", *argv]) == 0
    assert seen["log_json"] is json_logs
