"""``attribute``: its frame pinned, the completeness numbers consistent, and bad input refused."""

from __future__ import annotations

import math

import pytest

from server.server_helpers import ask

FRAME = {
    "type",
    "req",
    "ids",
    "target_id",
    "method",
    "steps",
    "baseline",
    "baseline_ids",
    "clean",
    "intervened",
    "interventions",
    "vocab",
}
RUN = {"scores", "f_input", "f_baseline", "delta", "rel_delta", "p_target"}


def test_integrated_gradients_frame_and_completeness(ws, tiny):
    f = ask(
        ws,
        {"type": "attribute", "req": 1, "prompt": "The capital of France is", "steps": 16},
        FRAME,
    )
    assert f["method"] == "integrated_gradients" and f["steps"] == 16
    assert f["intervened"] is None and f["interventions"] == []
    run = f["clean"]
    assert set(run) == RUN
    T = len(f["ids"])
    assert len(run["scores"]) == T and len(f["baseline_ids"]) == T
    assert "pad" in f["baseline"] or "token" in f["baseline"]
    # Captum's delta is sum(scores) - (f(input) - f(baseline)), and rel_delta follows from it
    gap = run["f_input"] - run["f_baseline"]
    assert sum(run["scores"]) - gap == pytest.approx(run["delta"], abs=1e-4)
    assert run["rel_delta"] == pytest.approx(abs(run["delta"]) / abs(gap), rel=1e-3, abs=1e-5)
    assert run["p_target"] == pytest.approx(math.exp(run["f_input"]), rel=1e-4)
    # the default target is the model's top prediction; its text was sent along
    assert str(f["target_id"]) in f["vocab"] or f["target_id"] in f["ids"]


def test_gradient_x_input_has_no_completeness(ws):
    f = ask(
        ws,
        {"type": "attribute", "req": 2, "prompt": "Hello world", "method": "gradient_x_input"},
        FRAME,
    )
    assert f["clean"]["delta"] is None and f["clean"]["f_baseline"] is None
    assert f["baseline_ids"] is None and f["steps"] == 1


def one_token_word(tok) -> tuple[str, int]:
    """A word of the tiny vocabulary that encodes to exactly one token (and its id)."""
    for i in range(200, 320):
        word = tok.decode([i])
        ids = [j for j in tok.encode(word) if j != tok.bos_id]
        if word.startswith(" ") and ids == [i]:
            return word, i
    raise AssertionError("no one-token word in the tiny vocabulary")


def test_target_by_text_and_id_agree(ws, tiny):
    word, tid = one_token_word(tiny.tokenizer)
    by_text = ask(
        ws,
        {
            "type": "attribute",
            "req": 3,
            "prompt": "The capital of France is",
            "target": word,
            "steps": 8,
        },
    )
    by_id = ask(
        ws,
        {
            "type": "attribute",
            "req": 4,
            "prompt": "The capital of France is",
            "target_id": tid,
            "steps": 8,
        },
    )
    assert by_text["target_id"] == by_id["target_id"] == tid
    assert by_text["clean"]["scores"] == by_id["clean"]["scores"]


def test_with_interventions_clean_and_intervened(ws, tiny):
    ablate = {"kind": "ablate", "point": "mlp_out", "block": 0, "mode": "zero"}
    f = ask(
        ws,
        {
            "type": "attribute",
            "req": 5,
            "ids": [5, 40, 77, 91],
            "steps": 8,
            "interventions": [ablate],
        },
        FRAME,
    )
    assert f["interventions"][0]["kind"] == "ablate"
    assert set(f["intervened"]) == RUN and len(f["intervened"]["scores"]) == 4
    assert f["intervened"]["scores"] != f["clean"]["scores"]  # the ablation changed something


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 513}, "steps"),
        ({"method": "saliency"}, "method"),
        ({"target": "France is Paris"}, "single token"),
        ({"target_id": 10**9}, "outside the vocabulary"),
        ({"target": " Paris", "target_id": 3}, "not both"),
        ({"ids": [1, 2]}, "either a prompt or token ids"),
        ({"interventions": [{"kind": "ablate", "point": "mlp_out", "block": 99}]}, "block 99"),
    ],
)
def test_bad_input_is_an_error_and_the_socket_lives_on(ws, extra, says):
    f = ask(ws, {"type": "attribute", "req": 6, "prompt": "The capital of France is", **extra})
    assert f["type"] == "error" and f["code"] == "bad_request", f
    assert says in f["message"], f["message"]
    ok = ask(ws, {"type": "attribute", "req": 7, "ids": [5, 6, 7], "steps": 2})
    assert ok["type"] == "attribution"


def test_empty_prompt_and_raw_ids_out_of_range(ws):
    f = ask(ws, {"type": "attribute", "req": 8, "prompt": "   "})
    assert f["type"] == "error" and "empty" in f["message"]
    f = ask(ws, {"type": "attribute", "req": 9, "ids": [10**7]})
    assert f["type"] == "error" and "out of range" in f["message"]
