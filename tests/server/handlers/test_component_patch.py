"""``component_patch``: its frame pinned (every component's grid and shape), a cell opened as an
ordinary trace, a subset of components, and bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.engine.analyses.component_patching import component_patch_sweep
from server.server_helpers import ask, frames_until_done

FRAME = {
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
CLEAN, CORRUPTED = "Hello world", "Hello there"


def test_every_component_and_opening_a_head_cell(ws, tiny):
    f = ask(
        ws, {"type": "component_patch", "req": 1, "clean": CLEAN, "corrupted": CORRUPTED}, FRAME
    )
    info, T = tiny.info, len(f["clean"])
    shapes = {
        "resid": (info.n_lens_layers, T),
        "attn_out": (info.n_blocks, T),
        "mlp_out": (info.n_blocks, T),
        "head_out": (info.n_blocks, info.n_heads),
    }
    for key in ("prob", "restored"):
        assert list(f[key]) == list(shapes)
        for comp, (rows, cols) in shapes.items():
            assert len(f[key][comp]) == rows and len(f[key][comp][0]) == cols, (key, comp)
    # the numbers are the engine's, restored derived from prob
    sweep = component_patch_sweep(tiny, f["clean"], f["corrupted"])
    assert sweep.answer_id == f["answer_id"]
    np.testing.assert_allclose(f["prob"]["head_out"], sweep.prob["head_out"], atol=1e-4)
    gap = f["p_clean"] - f["p_corrupted"]
    r, p = f["restored"]["mlp_out"][1][0], f["prob"]["mlp_out"][1][0]
    assert r == pytest.approx((p - f["p_corrupted"]) / gap, abs=2e-3)
    # the resid cell at the last layer and every position restores the clean run exactly
    assert f["restored"]["resid"][-1][T - 1] == pytest.approx(1.0, abs=1e-3)

    # a head cell as a run: the corrupted ids with that head's output patched at every position
    patch = sweep.cell_patch("head_out", 1, 2).model_dump(mode="json")
    assert patch["positions"] is None and patch["heads"] == [2]
    ws.send_json({"type": "trace", "req": 2, "ids": f["corrupted"], "interventions": [patch]})
    frames = frames_until_done(ws, 2)
    assert frames[0]["interventions"][0]["heads"] == [2] and frames[-1]["type"] == "done"


def test_a_subset_of_components(ws):
    msg = {
        "type": "component_patch",
        "req": 3,
        "clean": CLEAN,
        "corrupted": CORRUPTED,
        "components": ["head_out", "attn_out"],
    }
    f = ask(ws, msg, FRAME)
    assert list(f["restored"]) == ["attn_out", "head_out"]  # the engine's order


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"corrupted": "Hello there, and more words"}, "same number of tokens"),
        ({"components": []}, "components"),
        ({"components": ["resid", "resid"]}, "once"),
        ({"components": ["neurons"]}, "components"),
        ({"answer_id": 10**9}, "outside the vocabulary"),
        ({"clean": ""}, "clean"),
    ],
)
def test_bad_input_is_an_error_and_the_socket_lives_on(ws, extra, says):
    msg = {"type": "component_patch", "req": 4, "clean": CLEAN, "corrupted": CORRUPTED}
    f = ask(ws, {**msg, **extra})
    assert f["type"] == "error" and f["code"] == "bad_request", f
    assert says in f["message"], f["message"]
    ok = ask(ws, {**msg, "req": 5, "components": ["mlp_out"]})
    assert ok["type"] == "component_patch"
