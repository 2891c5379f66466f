"""``effect``: its frame, pinned; clean numbers agree with a plain trace; mean-ablation references
from text; the listed interventions reproduce in a trace; bad input."""

from __future__ import annotations

import math

from server.server_helpers import ask, frames_until_done, traced

EFFECT = {
    "type",
    "req",
    "ids",
    "target_id",
    "p_clean",
    "p_new",
    "logp_clean",
    "logp_new",
    "top_clean",
    "top_new",
    "top_clean_probs",
    "top_new_probs",
    "interventions",
    "vocab",
}
ABLATE = {"kind": "ablate", "heads": [[0, 0], [1, 1]], "mlps": [1], "mode": "zero"}


def test_effect_of_an_ablation(ws, tiny):
    done = traced(ws, "The capital of France is")
    ids = done["tokens"]
    msg = {"type": "effect", "req": 2, "ids": ids, "interventions": [ABLATE]}
    f = ask(ws, msg, EFFECT)
    assert f["ids"] == ids and f["target_id"] == f["top_clean"][0]  # default: the clean top
    assert math.isclose(math.exp(f["logp_clean"]), f["p_clean"], rel_tol=1e-4)
    assert math.isclose(math.exp(f["logp_new"]), f["p_new"], rel_tol=1e-4)
    assert f["p_new"] != f["p_clean"]  # switching off an MLP and two heads changes the answer
    assert f["top_clean_probs"] == sorted(f["top_clean_probs"], reverse=True)
    assert f["interventions"][0]["heads"] == [[0, 0], [1, 1]]
    # a chosen target, and the same numbers from the prompt's text
    other = f["top_clean"][1]
    g = ask(ws, {**msg, "req": 3, "target_id": other}, EFFECT)
    assert g["target_id"] == other and g["p_clean"] == f["top_clean_probs"][1]
    h = ask(
        ws,
        {
            "type": "effect",
            "req": 4,
            "prompt": "The capital of France is",
            "interventions": [ABLATE],
        },
        EFFECT,
    )
    assert h["ids"] == ids and h["p_new"] == f["p_new"]
    # the edited run's top token is what a trace with the echoed interventions predicts
    ws.send_json({"type": "trace", "req": 5, "ids": ids, "interventions": f["interventions"]})
    frames = frames_until_done(ws, 5)
    final = next(x for x in frames if x["type"] == "layer" and x["layer"] == tiny.info.n_blocks)
    assert final["top_ids"][-1][0] == f["top_new"][0]
    assert abs(final["top_probs"][-1][0] - f["top_new_probs"][0]) < 1e-5


def test_mean_ablation_over_a_reference_text(ws):
    ids = traced(ws)["tokens"]
    mean = {**ABLATE, "mode": "mean"}
    base = {"type": "effect", "req": 6, "ids": ids, "interventions": [mean]}
    own = ask(ws, base, EFFECT)
    assert own["interventions"][0]["reference_ids"] is None
    ref = ask(ws, {**base, "req": 7, "reference_text": "A quiet day by the sea"}, EFFECT)
    got = ref["interventions"][0]["reference_ids"]
    assert got and all(isinstance(i, int) for i in got)
    assert ref["p_new"] != own["p_new"] and ref["p_clean"] == own["p_clean"]
    # zero ablations keep no reference
    zero = ask(ws, {**base, "req": 8, "interventions": [ABLATE], "reference_text": "x y"}, EFFECT)
    assert zero["interventions"][0]["reference_ids"] is None


def test_effect_bad_input(ws, tiny):
    ids = traced(ws)["tokens"]
    base = {"type": "effect", "req": 9, "ids": ids, "interventions": [ABLATE]}
    n = tiny.info.n_blocks
    cases = [
        ({"interventions": []}, "bad_request"),
        ({"prompt": "Hi"}, "either a prompt or token ids"),
        ({"interventions": [{**ABLATE, "mlps": [n]}]}, "block"),
        ({"interventions": [{"kind": "ablate", "mode": "zero"}]}, "switches off nothing"),
        ({"target_id": tiny.info.vocab_size}, "vocabulary"),
        ({"target": "x" * 65}, "bad_request"),
        ({"target": "hello there friends"}, "one token"),
        ({"target": "x", "target_id": 3}, "not both"),
        ({"ids": [tiny.info.vocab_size]}, "out of range"),
    ]
    for change, expect in cases:
        f = ask(ws, {**base, **change})
        assert f["type"] == "error", change
        assert expect == f["code"] or expect in f["message"], (change, f["message"])
    assert ask(ws, {**base, "req": 10}, EFFECT)["type"] == "effect"  # still healthy
