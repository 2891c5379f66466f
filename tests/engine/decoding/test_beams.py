"""Beam search on a tiny model: greedy at width 1, exact log-probs, a consistent tree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.decoding.beams import beam_search
from layerscope.errors import InputError


@pytest.fixture(scope="module")
def model():
    from tiny import tiny_model

    return tiny_model("llama")


@pytest.fixture(scope="module")
def prompt(model):
    return model.tokenizer.encode("The capital of France is")


@pytest.fixture(scope="module")
def result(model, prompt):
    return beam_search(model, prompt, width=4, length=6, stop_at_eos=False)


def _logprob(model, ids, n_prompt):
    """Sum of the generated tokens' log-probabilities from one plain forward pass."""
    with torch.no_grad():
        logits = model.forward(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return float(sum(logp[t - 1, ids[t]] for t in range(n_prompt, len(ids))))


def test_width_one_is_greedy(model, prompt):
    r = beam_search(model, prompt, width=1, length=8, stop_at_eos=False)
    greedy = model.trace(ids=prompt, generate=8)
    assert r.beams[0].ids == greedy.ids


def test_log_probs_equal_a_plain_forward_pass(model, prompt, result):
    assert len(result.beams) == 4
    assert len({tuple(b.ids) for b in result.beams}) == 4
    for b in result.beams:
        assert b.ids[: len(prompt)] == prompt and len(b.ids) == len(prompt) + 6
        assert b.logprob == pytest.approx(_logprob(model, b.ids, len(prompt)), abs=1e-4)
        assert b.score == pytest.approx(b.logprob / 6)
        assert b.text == model.tokenizer.decode(b.ids[len(prompt) :])
    scores = [b.score for b in result.beams]
    assert scores == sorted(scores, reverse=True)


def test_the_tree_holds_every_beam(model, prompt, result):
    tree = result.tree
    assert tree[0].parent is None and tree[0].token_id is None
    assert tree[0].beam_ranks == [1, 2, 3, 4]
    for node in tree[1:]:
        parent = tree[node.parent]
        assert parent.step == node.step - 1
        assert node.cum_logprob == pytest.approx(parent.cum_logprob + node.logprob, abs=1e-4)
        assert 1 <= node.rank <= 4
    for rank, beam in enumerate(result.beams, start=1):
        path = [n for n in tree if rank in n.beam_ranks and n.token_id is not None]
        assert [n.token_id for n in sorted(path, key=lambda n: n.step)] == beam.ids[len(prompt) :]
    d = result.to_dict()
    assert len(d["tree"]) == len(tree) and d["beams"][0]["ids"] == result.beams[0].ids


def test_beams_are_deterministic_open_as_traces_and_leave_no_hooks(model, prompt, result):
    fresh = model.trace(ids=prompt)
    again = model.beam_search(prompt, width=4, length=6, stop_at_eos=False)
    assert [b.ids for b in again.beams] == [b.ids for b in result.beams]
    assert [b.logprob for b in again.beams] == [b.logprob for b in result.beams]
    tr = model.trace(ids=result.beams[1].ids)
    assert tr.ids == result.beams[1].ids
    np.testing.assert_array_equal(model.trace(ids=prompt).lens.top_probs, fresh.lens.top_probs)


def test_a_beam_stops_at_eos(model, prompt, monkeypatch):
    first = model.trace(ids=prompt, generate=1).ids[-1]
    monkeypatch.setattr(type(model.tokenizer), "stop_ids", property(lambda self: {first}))
    r = beam_search(model, prompt, width=3, length=5, length_penalty=0.0)  # score = the sum
    ends = [b for b in r.beams if b.finished]
    assert ends and ends[0].ids == [*prompt, first] and r.beams[0] == ends[0]
    assert r.tree[1].finished and r.tree[1].token_id == first
    unfinished = [b for b in r.beams if not b.finished]
    assert all(first not in b.ids[len(prompt) :] for b in unfinished)


def test_length_penalty_zero_ranks_by_the_sum(model, prompt):
    r = beam_search(model, prompt, width=3, length=4, length_penalty=0.0, stop_at_eos=False)
    assert all(b.score == pytest.approx(b.logprob) for b in r.beams)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "width must be"),
        ({"length": 0}, "length must be"),
        ({"width": 1000}, "at most"),
        ({"length": 10_000}, "context"),
        ({"length_penalty": float("nan")}, "finite"),
    ],
)
def test_bad_settings_are_refused(model, prompt, kwargs, message):
    with pytest.raises(InputError, match=message):
        beam_search(model, prompt, **kwargs)
