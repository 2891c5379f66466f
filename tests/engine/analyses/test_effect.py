"""The effect of interventions on the next token after the prompt."""

from __future__ import annotations

import math

import pytest

from layerscope.engine.analyses.effect import effect
from layerscope.engine.interventions import Ablate, Steer
from layerscope.engine.trace import run_trace
from layerscope.errors import InputError

PROMPT = "The capital of France is"


def test_effect_matches_the_final_layer_of_both_traces(model):
    ids = model.tokenizer.encode(PROMPT)
    ablate = [Ablate(heads=[(1, 0), (1, 3)], mlps=[0])]
    e = effect(model, ids, ablate)
    clean = run_trace(model, ids=ids, attention=False)
    new = run_trace(model, ids=ids, attention=False, interventions=ablate)
    assert e.target_id == int(clean.lens.top_ids[-1, -1, 0]) == e.top_clean[0]
    assert e.top_new[0] == int(new.lens.top_ids[-1, -1, 0])
    assert e.p_clean == pytest.approx(float(clean.lens.top_probs[-1, -1, 0]), abs=1e-6)
    assert e.p_new == pytest.approx(math.exp(e.logp_new), rel=1e-6)
    assert e.p_new != pytest.approx(e.p_clean, abs=1e-4)
    assert e.delta_p == e.p_new - e.p_clean and e.delta_logp == e.logp_new - e.logp_clean
    assert e.top_clean_probs == sorted(e.top_clean_probs, reverse=True)
    d = e.to_dict()
    assert d["interventions"][0]["mlps"] == [0] and d["delta_p"] == e.delta_p


def test_a_chosen_target_and_a_no_op(model):
    ids = model.tokenizer.encode(PROMPT)
    d = model.info.d_model
    e = effect(model, ids, [Steer(layer=1, vector=[1.0] * d, strength=0.0)], target_id=5)
    assert e.target_id == 5 and e.p_new == e.p_clean and e.logp_new == e.logp_clean
    with pytest.raises(InputError, match="vocabulary"):
        effect(model, ids, [], target_id=10**6)
    with pytest.raises(InputError, match="block 4"):
        effect(model, ids, [Ablate(attn=[4])])
