"""``compare``: its frame pinned, prompts of different lengths, stored traces usable by the
follow-up requests, chosen positions, and bad input refused."""

from __future__ import annotations

import pytest

from server.server_helpers import ask

FRAME = {
    "type",
    "req",
    "trace_a",
    "trace_b",
    "ids_a",
    "ids_b",
    "top_a",
    "prob_a",
    "top_b",
    "prob_b",
    "position_a",
    "position_b",
    "cos_last",
    "cos_pair",
    "threshold",
    "diverge",
    "diverge_pair",
    "first_diverge",
    "biggest_drops",
    "vocab",
}


def test_compare_different_lengths(ws, tiny):
    msg = {
        "type": "compare",
        "req": 1,
        "prompt_a": "Hello world",
        "prompt_b": "The capital of Italy is",
    }
    f = ask(ws, msg, FRAME)
    L1 = tiny.info.n_lens_layers
    Ta, Tb = len(f["ids_a"]), len(f["ids_b"])
    assert Ta != Tb
    assert len(f["top_a"]) == L1 and len(f["top_a"][0]) == Ta and len(f["prob_b"][0]) == Tb
    assert len(f["cos_last"]) == len(f["cos_pair"]) == L1
    # the default pair is the two last positions, so both curves agree
    assert (f["position_a"], f["position_b"]) == (Ta - 1, Tb - 1)
    assert f["cos_pair"] == f["cos_last"]
    assert all(-1.0 <= c <= 1.0 + 1e-6 for c in f["cos_last"])
    assert f["diverge"] == [i for i, c in enumerate(f["cos_last"]) if c < f["threshold"]]
    # every token the strips show has its text
    shown = {*f["ids_a"], *f["ids_b"], *(i for row in f["top_a"] + f["top_b"] for i in row)}
    assert {str(i) for i in shown} <= set(f["vocab"])
    # both traces are stored: the attention of either can be asked for
    for key, T in (("trace_a", Ta), ("trace_b", Tb)):
        pat = ask(
            ws,
            {"type": "attention_pattern", "req": 2, "trace_id": f[key], "block": 1, "head": 0},
        )
        assert pat["type"] == "attention_pattern" and len(pat["pattern"]) == T


def test_identical_prompts_are_identical(ws):
    f = ask(ws, {"type": "compare", "req": 3, "prompt_a": "Hello world", "prompt_b": "Hello world"})
    assert all(c == pytest.approx(1.0, abs=1e-4) for c in f["cos_last"])
    assert f["diverge"] == [] and f["first_diverge"] is None
    assert f["top_a"] == f["top_b"]


def test_chosen_positions(ws):
    msg = {
        "type": "compare",
        "req": 4,
        "prompt_a": "The capital of France is",
        "prompt_b": "The capital of Italy is",
        "position_a": 0,
        "position_b": 0,
    }
    f = ask(ws, msg, FRAME)
    assert (f["position_a"], f["position_b"]) == (0, 0)
    assert f["ids_a"][0] == f["ids_b"][0]  # the same first token, so the same stream at it
    assert all(c == pytest.approx(1.0, abs=1e-4) for c in f["cos_pair"])
    assert f["diverge_pair"] == []


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"position_a": 0}, "both positions"),
        ({"position_a": 0, "position_b": 99}, "outside prompt b"),
        ({"position_a": 50, "position_b": 0}, "outside prompt a"),
        ({"threshold": 2.0}, "threshold"),
        ({"prompt_b": ""}, "prompt_b"),
        ({"prompt_b": "   "}, "empty"),
    ],
)
def test_bad_input_is_an_error_and_the_socket_lives_on(ws, extra, says):
    msg = {"type": "compare", "req": 5, "prompt_a": "Hello world", "prompt_b": "Hello there"}
    f = ask(ws, {**msg, **extra})
    assert f["type"] == "error" and f["code"] == "bad_request", f
    assert says in f["message"], f["message"]
    assert ask(ws, {**msg, "req": 6})["type"] == "compare"
