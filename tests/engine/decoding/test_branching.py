"""Branching: replace one token and regenerate, as an ordinary deterministic trace."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.engine.decoding.branching import branch
from layerscope.errors import InputError


@pytest.fixture(scope="module")
def model():
    from tiny import tiny_model

    return tiny_model("llama")


@pytest.fixture(scope="module")
def run(model):
    return model.trace("The capital of France is", generate=6)


def test_branch_replaces_the_token_and_regenerates(model, run):
    pos = run.n_prompt + 2
    new = (run.ids[pos] + 1) % model.info.vocab_size
    b = model.branch(run.ids, pos, new, generate=5)
    assert b.ids[: pos + 1] == [*run.ids[:pos], new] and b.n_prompt == pos + 1
    assert len(b.ids) == pos + 1 + 5
    assert b.ids == model.trace(ids=[*run.ids[:pos], new], generate=5).ids


def test_sampled_branches_are_deterministic_with_a_seed(model, run):
    kw = {"generate": 8, "temperature": 1.0, "seed": 3}
    a = branch(model, run.ids, 3, 7, **kw)
    b = branch(model, run.ids, 3, 7, **kw)
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.lens.top_probs, b.lens.top_probs)


def test_a_prompt_position_and_the_end_are_allowed(model, run):
    assert branch(model, run.ids, 1, 9, generate=0).ids == [run.ids[0], 9]
    end = branch(model, run.ids, len(run.ids), 9, generate=2)
    assert end.ids[: len(run.ids) + 1] == [*run.ids, 9]


@pytest.mark.parametrize(
    ("position", "token", "message"),
    [
        (0, 5, "outside 1.."),
        (999, 5, "outside 1.."),
        (2, -1, "outside the vocabulary"),
        (2, 10**6, "outside the vocabulary"),
        (2.5, 5, "integer"),
    ],
)
def test_bad_branches_are_refused(model, run, position, token, message):
    with pytest.raises(InputError, match=message):
        branch(model, run.ids, position, token)


def test_a_branch_takes_no_prompt(model, run):
    with pytest.raises(InputError, match="no prompt"):
        branch(model, run.ids, 2, 5, prompt="hi")
    with pytest.raises(InputError, match="context"):
        branch(model, run.ids, 2, 5, generate=10_000)


def test_a_branch_under_an_intervention_leaves_no_hooks(model, run):
    from layerscope.engine.interventions import Ablate

    fresh = model.trace(ids=run.ids)
    ablate = Ablate(point="mlp_out", block=0)
    b = branch(model, run.ids, 4, 11, generate=3, interventions=[ablate])
    assert b.interventions == [ablate.model_dump(mode="json")]
    plain = branch(model, run.ids, 4, 11, generate=3)
    assert not np.array_equal(b.lens.top_probs[:, :5], plain.lens.top_probs[:, :5])
    after = model.trace(ids=run.ids)
    np.testing.assert_array_equal(after.lens.top_probs, fresh.lens.top_probs)
