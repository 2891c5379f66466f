"""Requests that read a stored trace or run an analysis: their frames, pinned, and answers."""

from __future__ import annotations

from server.server_helpers import ask, traced

HEADS = {"type", "req", "trace_id", "position", "target_id", "contrib", "top_ids", "vocab"}
CELL = {"type", "req", "trace_id", "layer", "position", "ids", "probs", "vocab"}
PCA = {"type", "req", "trace_id", "positions", "coords", "explained"}
EARLY_EXIT = {"type", "req", "layer", "n_lens_layers", "prompt", "early", "full", "vocab"}
PATCH_SWEEP = {
    "type",
    "req",
    "sweep_id",
    "clean",
    "corrupted",
    "answer_id",
    "p_clean",
    "p_corrupted",
    "prob",
    "restored",
    "vocab",
}


def test_heads(ws, tiny):
    done = traced(ws)
    T = len(done["tokens"])
    f = ask(
        ws,
        {"type": "heads", "req": 2, "trace_id": done["trace_id"], "position": T - 1, "k": 3},
        HEADS,
    )
    assert len(f["contrib"]) == tiny.info.n_blocks and len(f["contrib"][0]) == tiny.info.n_heads
    assert len(f["top_ids"][0][0]) == 3
    quick = ask(
        ws, {"type": "heads", "req": 3, "trace_id": done["trace_id"], "position": T - 1, "k": 0}
    )
    assert quick["contrib"] == f["contrib"]  # the same contributions, no top tokens
    assert all(ids == [] for row in quick["top_ids"] for ids in row)


def test_cell(ws):
    done = traced(ws)
    msg = {
        "type": "cell",
        "req": 3,
        "trace_id": done["trace_id"],
        "layer": 1,
        "position": 0,
        "k": 8,
    }
    f = ask(ws, msg, CELL)
    assert len(f["ids"]) == 8 and f["probs"] == sorted(f["probs"], reverse=True)
    bad = ask(ws, {**msg, "req": 4, "layer": 99})
    assert bad["type"] == "error" and "layer 99" in bad["message"]


def test_pca(ws, tiny):
    done = traced(ws)
    T = len(done["tokens"])
    f = ask(
        ws, {"type": "pca", "req": 4, "trace_id": done["trace_id"], "positions": [0, T - 1]}, PCA
    )
    assert len(f["coords"]) == tiny.info.n_lens_layers and len(f["coords"][0]) == 2


def test_early_exit(ws, tiny):
    f = ask(
        ws,
        {"type": "early_exit", "req": 5, "prompt": "Hello", "layer": 1, "generate": 3},
        EARLY_EXIT,
    )
    assert len(f["early"]) == 3 and len(f["full"]) == 3
    assert f["n_lens_layers"] == tiny.info.n_lens_layers


def test_patch_sweep_and_opening_a_cell_as_an_ordinary_trace(ws, tiny):
    f = ask(
        ws,
        {"type": "patch_sweep", "req": 6, "clean": "Hello world", "corrupted": "Hello there"},
        PATCH_SWEEP,
    )
    assert len(f["prob"]) == tiny.info.n_lens_layers and len(f["prob"][0]) == len(f["clean"])
    # the cell (layer 1, position 0) as a run: the corrupted ids with one Patch attached
    patch = {
        "kind": "patch",
        "point": "resid_post",
        "block": 0,
        "positions": [0],
        "source_ids": f["clean"],
    }
    ws.send_json({"type": "trace", "req": 8, "ids": f["corrupted"], "interventions": [patch]})
    from server.server_helpers import frames_until_done

    frames = frames_until_done(ws, 8)
    assert (
        frames[0]["type"] == "start" and frames[0]["interventions"][0]["source_ids"] == f["clean"]
    )
    assert frames[-1]["type"] == "done"
