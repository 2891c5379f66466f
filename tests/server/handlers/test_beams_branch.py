"""``beams`` and ``branch``: their frames, pinned, what they answer, and bad input."""

from __future__ import annotations

from server.server_helpers import ask, frames_until_done, traced

BEAMS = {"type", "req", "prompt", "width", "length_penalty", "beams", "tree", "vocab"}
BEAM = {"ids", "text", "logprob", "score", "finished", "node"}
NODE = {
    "id",
    "parent",
    "token_id",
    "logprob",
    "cum_logprob",
    "step",
    "rank",
    "finished",
    "beam_ranks",
}
BRANCH = {"type", "req", "trace_id", "position", "token_id", "was_id", "ids", "text", "vocab"}


def test_beams_tree_and_opening_a_beam_as_a_trace(ws):
    msg = {"type": "beams", "req": 1, "prompt": "Hello world", "width": 3, "length": 4}
    f = ask(ws, msg, BEAMS)
    assert f["width"] == 3 and len(f["beams"]) == 3
    assert all(set(b) == BEAM for b in f["beams"]) and all(set(n) == NODE for n in f["tree"])
    root = f["tree"][0]
    assert root["parent"] is None and root["token_id"] is None
    by_id = {n["id"]: n for n in f["tree"]}
    scores = [b["score"] for b in f["beams"]]
    assert scores == sorted(scores, reverse=True)
    for rank, b in enumerate(f["beams"], start=1):
        assert b["ids"][: len(f["prompt"])] == f["prompt"]
        # the path from the beam's node back to the root spells its generated ids
        path, node = [], by_id[b["node"]]
        while node["token_id"] is not None:
            assert rank in node["beam_ranks"]
            path.append(node["token_id"])
            node = by_id[node["parent"]]
        assert path[::-1] == b["ids"][len(f["prompt"]) :]
        assert abs(by_id[b["node"]]["cum_logprob"] - b["logprob"]) < 1e-4
    for tid in (n["token_id"] for n in f["tree"] if n["token_id"] is not None):
        assert str(tid) in f["vocab"]
    # a beam opens as an ordinary trace of its ids
    ws.send_json({"type": "trace", "req": 2, "ids": f["beams"][0]["ids"]})
    done = frames_until_done(ws, 2)[-1]
    assert done["type"] == "done" and done["tokens"] == f["beams"][0]["ids"]


def test_beams_bad_input(ws):
    for bad in (
        {"width": 0},
        {"width": 17},
        {"length": 65},
        {"length_penalty": -1},
        {"prompt": ""},
    ):
        f = ask(ws, {"type": "beams", "req": 3, "prompt": "Hi", **bad})
        assert f["type"] == "error" and f["code"] == "bad_request", bad
    f = ask(ws, {"type": "beams", "req": 4, "prompt": "   "})
    assert f["type"] == "error" and "empty" in f["message"]
    assert ask(ws, {"type": "beams", "req": 5, "prompt": "Hi", "length": 2}, BEAMS)["beams"]


def test_branch_keeps_the_prefix_and_writes_on(ws, tiny):
    done = traced(ws, "The capital of France is")
    ids = done["tokens"]
    token = (ids[2] + 1) % tiny.info.vocab_size
    msg = {"type": "branch", "req": 6, "ids": ids, "position": 2, "token_id": token, "generate": 3}
    f = ask(ws, msg, BRANCH)
    assert f["ids"][:2] == ids[:2] and f["ids"][2] == token and len(f["ids"]) == 2 + 1 + 3
    assert f["was_id"] == ids[2] and f["position"] == 2 and f["token_id"] == token
    assert isinstance(f["text"], str)
    # the same branch again: greedy, so the same text; the stored trace answers a cell request
    assert ask(ws, {**msg, "req": 7})["ids"] == f["ids"]
    cell = ask(ws, {"type": "cell", "req": 8, "trace_id": f["trace_id"], "layer": 0, "position": 2})
    assert cell["type"] == "cell"
    # appending at the end is a branch too
    end = ask(ws, {**msg, "req": 9, "position": len(ids), "generate": 0})
    assert end["ids"] == [*ids, token] and end["was_id"] is None


def test_branch_bad_input(ws, tiny):
    ids = traced(ws)["tokens"]
    base = {"type": "branch", "req": 10, "ids": ids, "position": 1, "token_id": 5}
    cases = [
        ({"position": 0}, "bad_request"),
        ({"position": len(ids) + 1}, "outside"),
        ({"token_id": tiny.info.vocab_size}, "vocabulary"),
        ({"ids": []}, "bad_request"),
        ({"generate": 65}, "bad_request"),
    ]
    for change, expect in cases:
        f = ask(ws, {**base, **change})
        assert f["type"] == "error", change
        assert expect in (f["code"], f["message"]) or expect in f["message"], (change, f)
    assert ask(ws, {**base, "req": 11}, BRANCH)["type"] == "branch"  # still healthy
