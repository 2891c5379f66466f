"""Steering vectors (ActAdd for one pair, CAA for several) and the strength sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.analyses.steering import (
    concept_token,
    default_layer,
    pad_token,
    residuals,
    steer_sweep,
    steering_vector,
)
from layerscope.engine.trace import run_trace
from layerscope.errors import InputError


def test_actadd_is_the_padded_difference_of_the_two_residual_streams(model):
    tok = model.tokenizer
    pos, neg = "Once upon a time", "Hello"
    sv = steering_vector(model, pos, neg, layer=1)
    a, b = tok.encode(pos), tok.encode(neg)
    assert len(a) > len(b)
    fill, described = pad_token(model)
    assert tok.decode([fill]) == " " and "space" in described and sv.padding == described
    b = b + [fill] * (len(a) - len(b))
    want = (residuals(model, a, 1) - residuals(model, b, 1)).numpy()
    np.testing.assert_array_equal(sv.vector, want)
    assert sv.method == "actadd" and sv.where == "aligned" and sv.vector.shape == (len(a), 64)
    steer = sv.to_steer(2.5)
    assert steer.layer == 1 and steer.strength == 2.5 and steer.where == "aligned"


def test_caa_is_the_mean_difference_at_the_last_token(model):
    tok = model.tokenizer
    pos, neg = ["I am fine", "Hello world"], ["How are you", "The capital"]
    sv = steering_vector(model, pos, neg, layer=2)
    diffs = [
        residuals(model, tok.encode(p), 2)[-1] - residuals(model, tok.encode(n), 2)[-1]
        for p, n in zip(pos, neg, strict=True)
    ]
    np.testing.assert_allclose(sv.vector, torch.stack(diffs).mean(0).numpy(), rtol=1e-6)
    assert sv.method == "caa" and sv.where == "generated" and sv.vector.shape == (64,)
    assert sv.to_dict()["shape"] == [64]


def test_the_default_layer_is_a_fifth_of_the_depth(model):
    assert default_layer(model) == 1  # at least 1 on a 2-block model
    assert steering_vector(model, "Hello", "world").layer == 1


def test_the_sweep_matches_ordinary_steered_traces(model):
    ids = model.tokenizer.encode("The capital of France is")
    sv = steering_vector(model, "Once upon a time", "1 2 3 4", layer=1)
    sweep = steer_sweep(model, ids, sv, strengths=(-6, 0, 6), generate=5, concept=" Paris")
    assert [r.strength for r in sweep.rows] == [-6.0, 0.0, 6.0]
    plain = run_trace(model, ids=ids, generate=5, attention=False)
    assert sweep.rows[1].ids == plain.ids[len(ids) :]  # strength 0 is the unsteered run
    for row in sweep.rows:
        tr = run_trace(
            model, ids=ids, generate=5, attention=False, interventions=[sv.to_steer(row.strength)]
        )
        assert row.ids == tr.ids[len(ids) :]
        assert row.text == model.tokenizer.decode(row.ids)
    assert sweep.rows[0].ids != sweep.rows[1].ids or sweep.rows[2].ids != sweep.rows[1].ids


def test_the_concept_probability_is_the_mean_over_generated_steps(model):
    ids = model.tokenizer.encode("Hello")
    sv = steering_vector(model, "Hello", "world", layer=1)
    sweep = steer_sweep(model, ids, sv, strengths=(0, 3), generate=4, concept=" Paris")
    paris = concept_token(model, " Paris")
    assert sweep.concept_id == paris
    row = sweep.rows[0]
    # the distributions that chose each generated token: prompt's last position, then each new
    tr = run_trace(model, ids=ids, generate=4, attention=False)
    with torch.inference_mode():
        logits = model.forward(torch.tensor([tr.ids])).logits[0].float()
    want = torch.softmax(logits, -1)[len(ids) - 1 : len(tr.ids) - 1, paris]
    np.testing.assert_allclose(row.step_probs, want.numpy(), rtol=1e-4, atol=1e-7)
    assert row.concept_prob == pytest.approx(float(want.mean()), rel=1e-4)
    assert "p(' Paris')" in sweep.table() and len(sweep.table().splitlines()) == 3
    assert steer_sweep(model, ids, sv, strengths=(1,), generate=2).rows[0].concept_prob is None


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda m: steering_vector(m, "a", ["b", "c"]), "as many negative"),
        (lambda m: steering_vector(m, [], []), "no positive"),
        (lambda m: steering_vector(m, " ", "b"), "empty"),
        (lambda m: steering_vector(m, "a", "b", layer=3), "lens layers 0..2"),
        (lambda m: steering_vector(m, "a", "b", layer=-1), "lens layers"),
    ],
)
def test_bad_steering_input(model, call, words):
    with pytest.raises(InputError, match=words):
        call(model)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"strengths": (float("nan"),)}, "finite"),
        ({"strengths": (float("inf"), 1.0)}, "finite"),
        ({"strengths": ()}, "no strengths"),
        ({"generate": 0}, "generate"),
        ({"concept": ""}, "concept is empty"),
    ],
)
def test_bad_sweep_input(model, kwargs, words):
    sv = steering_vector(model, "Hello", "world", layer=1)
    with pytest.raises(InputError, match=words):
        steer_sweep(model, model.tokenizer.encode("Hi"), sv, **kwargs)
