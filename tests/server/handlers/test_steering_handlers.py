"""``steering_vector`` and ``steer_sweep``: frames pinned; the frame's vector steers an ordinary
trace exactly as the sweep does; strength 0 is the plain run; bad input."""

from __future__ import annotations

import pytest

from server.server_helpers import ask, frames_until_done

VECTOR = {
    "type",
    "req",
    "vector_id",
    "layer",
    "n_blocks",
    "method",
    "where",
    "shape",
    "norm",
    "padding",
    "vector",
}
SWEEP = {
    "type",
    "req",
    "vector_id",
    "prompt",
    "layer",
    "method",
    "where",
    "concept_id",
    "rows",
    "vocab",
}
ROW = {"strength", "ids", "text", "concept_prob"}


def generated(ws, req: int, msg: dict) -> list[int]:
    ws.send_json({"type": "trace", "req": req, **msg})
    frames = frames_until_done(ws, req)
    assert frames[-1]["type"] == "done", frames[-1]
    return frames[-1]["tokens"][frames[-1]["n_prompt"] :]


@pytest.mark.parametrize(
    ("positive", "negative", "method", "where"),
    [
        (["Love"], ["Hate"], "actadd", "aligned"),
        (["I love it", "Good"], ["I hate it", "Bad"], "caa", "generated"),
    ],
)
def test_vector_steers_a_trace_as_the_sweep_does(ws, tiny, positive, negative, method, where):
    v = ask(
        ws,
        {
            "type": "steering_vector",
            "req": 1,
            "positive": positive,
            "negative": negative,
            "layer": 1,
        },
        VECTOR,
    )
    assert (v["method"], v["where"], v["layer"], v["n_blocks"]) == (
        method,
        where,
        1,
        tiny.info.n_blocks,
    )
    d = tiny.info.d_model
    assert v["shape"][-1] == d and (len(v["shape"]) == 2) == (method == "actadd")
    assert v["norm"] > 0
    msg = {"type": "steer_sweep", "req": 2, "prompt": "Hello world", "vector_id": v["vector_id"]}
    f = ask(ws, {**msg, "strengths": [0, 3], "generate": 4, "concept": " the"}, SWEEP)
    assert [r["strength"] for r in f["rows"]] == [0, 3] and all(set(r) == ROW for r in f["rows"])
    assert all(0 <= r["concept_prob"] <= 1 for r in f["rows"]) and f["concept_id"] is not None
    # strength 0 is the unsteered run; strength 3 is a trace with the frame's vector at 3
    assert (
        generated(ws, 3, {"prompt": "Hello world", "generate": 4})[: len(f["rows"][0]["ids"])]
        == f["rows"][0]["ids"]
    )
    steer = {
        "kind": "steer",
        "layer": v["layer"],
        "vector": v["vector"],
        "strength": 3,
        "where": v["where"],
    }
    got = generated(ws, 4, {"prompt": "Hello world", "generate": 4, "interventions": [steer]})
    assert got[: len(f["rows"][1]["ids"])] == f["rows"][1]["ids"]


def test_default_layer_and_no_concept(ws, tiny):
    v = ask(
        ws, {"type": "steering_vector", "req": 5, "positive": ["Yes"], "negative": ["No"]}, VECTOR
    )
    assert 0 < v["layer"] <= tiny.info.n_blocks
    f = ask(
        ws,
        {
            "type": "steer_sweep",
            "req": 6,
            "prompt": "Hi",
            "vector_id": v["vector_id"],
            "generate": 2,
        },
        SWEEP,
    )
    assert [r["strength"] for r in f["rows"]] == [-8, -4, -2, 0, 2, 4, 8]
    assert f["concept_id"] is None and all(r["concept_prob"] is None for r in f["rows"])


def test_steering_bad_input(ws, tiny):
    base = {"type": "steering_vector", "req": 7, "positive": ["Love"], "negative": ["Hate"]}
    for change, expect in [
        ({"positive": []}, "bad_request"),
        ({"negative": ["a", "b"]}, "as many"),
        ({"positive": [""]}, "bad_request"),
        ({"layer": tiny.info.n_blocks + 1}, "outside the lens layers"),
    ]:
        f = ask(ws, {**base, **change})
        assert f["type"] == "error" and (expect == f["code"] or expect in f["message"]), change
    v = ask(ws, base, VECTOR)
    sweep = {"type": "steer_sweep", "req": 8, "prompt": "Hi", "vector_id": v["vector_id"]}
    for change, expect in [
        ({"vector_id": "v_nope"}, "not_found"),
        ({"strengths": []}, "bad_request"),
        ({"strengths": [65]}, "bad_request"),
        ({"generate": 0}, "bad_request"),
        ({"generate": 65}, "bad_request"),
        ({"prompt": "  "}, "empty"),
    ]:
        f = ask(ws, {**sweep, **change})
        assert f["type"] == "error" and (expect == f["code"] or expect in f["message"]), change
    # a trace id is not a vector id
    ws.send_json({"type": "trace", "req": 9, "prompt": "Hi"})
    tid = frames_until_done(ws, 9)[-1]["trace_id"]
    assert ask(ws, {**sweep, "req": 10, "vector_id": tid})["code"] == "not_found"
    assert ask(ws, {**sweep, "req": 11, "generate": 1}, SWEEP)["rows"]  # still healthy
