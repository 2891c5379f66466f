"""The data-flow and component requests: pipeline, sub-layer lens, attention layer, MLP neurons.

Their frames are pinned here; the numbers are checked against the engine on the same stored trace.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.engine.statistics import NAMES
from server.server_helpers import ask, frames_until_done, traced

PIPELINE = {
    "type",
    "req",
    "trace_id",
    "position",
    "target_id",
    "stages",
    "stops",
    "resid_norm",
    "add_norm",
    "add_cos",
    "dla",
    "embed_dla",
    "bias_dla",
    "target_logit",
    "lens_top_ids",
    "lens_top_probs",
    "lens_target_prob",
    "vocab",
}
SUBLAYER_DONE = {"type", "req", "trace_id", "n_stops", "labels"}
LAYER = {"type", "req", "layer", *NAMES, "vocab"}
ATTENTION_LAYER = {
    "type",
    "req",
    "trace_id",
    "block",
    "position",
    "target_id",
    "pattern",
    "out_norm",
    "dla",
    "roles",
    "vocab",
}
MLP_NEURONS = {
    "type",
    "req",
    "trace_id",
    "block",
    "position",
    "target_id",
    "neurons",
    "acts",
    "dla",
    "promoted",
    "suppressed",
    "vocab",
}
ROLES = {"previous_token", "duplicate_token", "induction", "first_token", "entropy"}


def test_pipeline(ws, tiny):
    done = traced(ws)
    T, L = len(done["tokens"]), tiny.info.n_blocks
    msg = {"type": "pipeline", "req": 2, "trace_id": done["trace_id"], "position": T - 1}
    f = ask(ws, msg, PIPELINE)
    assert f["stages"][0] == "embed" and f["stages"][-1] == "final norm"
    assert f["stages"][1:3] == ["b0·attn", "b0·mlp"] and len(f["stages"]) == 2 * L + 2
    assert f["stops"][:3] == ["h_0", "b0·attn", "h_1"] and f["stops"][-1] == f"h_{L}"
    assert len(f["resid_norm"]) == 2 * L + 1 and len(f["lens_target_prob"]) == 2 * L + 1
    for name in ("add_norm", "add_cos", "dla"):
        assert len(f[name]) == 2 * L, name
    assert all(-1.0001 <= c <= 1.0001 for c in f["add_cos"])
    assert len(f["lens_top_ids"]) == 2 * L + 1 and len(f["lens_top_ids"][0]) == 5
    # the default target is the final top prediction, and the last stop is the model's output
    assert f["target_id"] == f["lens_top_ids"][-1][0]
    total = f["embed_dla"] + sum(f["dla"]) + f["bias_dla"]
    assert total == pytest.approx(f["target_logit"], abs=2e-3 * (1 + abs(f["target_logit"])))
    # a chosen target, and errors
    other = ask(ws, {**msg, "req": 3, "target_id": 7, "position": 0}, PIPELINE)
    assert other["target_id"] == 7 and other["position"] == 0
    bad = ask(ws, {**msg, "req": 4, "position": T + 5})
    assert bad["type"] == "error" and bad["code"] == "bad_request"
    gone = ask(ws, {**msg, "req": 5, "trace_id": "t_nope"})
    assert gone["type"] == "error" and gone["code"] == "not_found"


def test_sublayer_lens_streams_layer_frames(ws, tiny):
    done = traced(ws)
    T, L = len(done["tokens"]), tiny.info.n_blocks
    ws.send_json({"type": "sublayer_lens", "req": 6, "trace_id": done["trace_id"], "k": 3})
    frames = frames_until_done(ws, 6)
    layers, end = frames[:-1], frames[-1]
    assert set(end) == SUBLAYER_DONE and end["n_stops"] == 2 * L + 1
    assert end["labels"][1] == "b0·attn" and len(end["labels"]) == 2 * L + 1
    assert [f["layer"] for f in layers] == [2 * L, *range(2 * L)]  # the final stop first
    for f in layers:
        assert set(f) == LAYER and f["type"] == "layer"
        assert len(f["top_ids"]) == T and len(f["top_ids"][0]) == 3
    # stop 2l is lens layer l of the trace: the same top tokens as the trace's own lens
    ws.send_json({"type": "trace", "req": 7, "prompt": "The capital of France is"})
    trace_layers = {f["layer"]: f for f in frames_until_done(ws, 7) if f["type"] == "layer"}
    by_stop = {f["layer"]: f for f in layers}
    for layer in range(L + 1):
        got = np.array(by_stop[2 * layer]["top_ids"])[:, 0]
        want = np.array(trace_layers[layer]["top_ids"])[:, 0]
        assert (got == want).all(), layer


def test_attention_layer(ws, tiny):
    done = traced(ws)
    T, H = len(done["tokens"]), tiny.info.n_heads
    msg = {
        "type": "attention_layer",
        "req": 8,
        "trace_id": done["trace_id"],
        "block": 1,
        "position": T - 1,
    }
    f = ask(ws, msg, ATTENTION_LAYER)
    assert len(f["pattern"]) == H and len(f["pattern"][0]) == T
    for row in f["pattern"]:
        assert sum(row) == pytest.approx(1.0, abs=1e-3)
    assert len(f["out_norm"]) == H and all(v >= 0 for v in f["out_norm"])
    assert len(f["dla"]) == H
    assert set(f["roles"]) >= ROLES and all(len(v) == H for v in f["roles"].values())
    bad = ask(ws, {**msg, "req": 9, "block": tiny.info.n_blocks})
    assert bad["type"] == "error" and "block" in bad["message"]


def test_mlp_neurons(ws, tiny):
    done = traced(ws)
    T = len(done["tokens"])
    msg = {
        "type": "mlp_neurons",
        "req": 10,
        "trace_id": done["trace_id"],
        "block": 0,
        "position": T - 1,
        "k": 4,
        "n_tokens": 3,
    }
    f = ask(ws, msg, MLP_NEURONS)
    assert len(f["neurons"]) == 4 and len(set(f["neurons"])) == 4
    assert f["acts"] == sorted(f["acts"], reverse=True)
    assert len(f["dla"]) == 4
    assert np.array(f["promoted"]).shape == (4, 3) and np.array(f["suppressed"]).shape == (4, 3)
    bad = ask(ws, {**msg, "req": 11, "block": -1})
    assert bad["type"] == "error" and bad["code"] == "bad_request"
