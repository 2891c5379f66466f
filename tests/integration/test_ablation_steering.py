"""Ablation and steering on the real default model (SmolLM2-135M-Instruct, CPU, fp32).

Numbers measured while writing this (recorded with ``record_property`` and printed):

- "The capital of France is" → p(" Paris") = 0.7725. Zeroing one head at a time, the heads the
  answer needs most (block.head: Δp) are 23.4: −0.631 (p → 0.141), 0.4: −0.562, 11.7: −0.300,
  12.0: −0.279, 0.6: −0.227; the median head moves p by −0.005. Zeroing the attention layer
  of block 23 gives p = 0.085, its MLP 0.727, the whole block 0.022.
- ActAdd "Love" − "Hate" at h_6 (the default layer, 0.2 of 30 blocks) on "I hate you because",
  12 greedy tokens, p(" love") averaged over the generated steps: strength −4: 0.0000, 0: 0.0031,
  4: 0.0108, 8: 0.0905 — and at 8 the text turns into " you love me, and I love you too, ...".
"""

from __future__ import annotations

import numpy as np
import pytest

import layerscope
from layerscope import Ablate

pytestmark = pytest.mark.integration

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def model():
    return layerscope.load("smollm2-135m", device="cpu")


@pytest.fixture(scope="module")
def paris(model):
    return model.tokenizer.encode(" Paris")[0]


def test_one_head_carries_paris_and_the_sweep_finds_it(model, paris, record_property):
    sweep = model.head_sweep(PROMPT, target_id=paris)
    top = sweep.ranking(5)
    record_property("paris_p_clean", sweep.p_clean)
    record_property("paris_top_heads", [(b, h, round(d, 3)) for b, h, d in top])
    print("\np(' Paris') clean", round(sweep.p_clean, 4), "top heads (block, head, Δp):", top)
    assert sweep.p_clean == pytest.approx(0.7725, abs=0.01)
    assert top[0][:2] == (23, 4) and top[0][2] < -0.5
    assert {(b, h) for b, h, _ in top[:3]} >= {(23, 4), (0, 4)}
    assert abs(float(np.median(sweep.delta))) < 0.02  # most heads barely matter here
    e = model.effect(PROMPT, [Ablate(heads=[(23, 4)])], target_id=paris)
    assert e.p_new == pytest.approx(0.141, abs=0.03)
    assert e.logp_new < e.logp_clean - 1.0
    assert e.p_new == pytest.approx(float(sweep.prob[23, 4]), abs=1e-4)
    attn = model.effect(PROMPT, [Ablate(attn=[23])], target_id=paris)
    mlp = model.effect(PROMPT, [Ablate(mlps=[23])], target_id=paris)
    record_property("paris_p_without_attn23_mlp23", (attn.p_new, mlp.p_new))
    assert attn.p_new == pytest.approx(0.085, abs=0.03) and mlp.p_new > 0.6


def test_ablation_is_reversible_on_the_real_model(model):
    fresh = model.trace(PROMPT, generate=3, attention=False).to_dict()
    model.trace(PROMPT, generate=3, interventions=[Ablate(layers=[3], mode="mean")])
    again = model.trace(PROMPT, generate=3, attention=False).to_dict()
    fresh.pop("timings", None)
    again.pop("timings", None)
    assert again == fresh


def test_love_minus_hate_steers_towards_love(model, record_property):
    sv = model.steering_vector("Love", "Hate")
    assert sv.layer == 6 and sv.method == "actadd" and sv.vector.shape == (2, 576)
    sweep = model.steer_sweep(
        "I hate you because", sv, strengths=(-4, 0, 4, 8), generate=12, concept=" love"
    )
    probs = [r.concept_prob for r in sweep.rows]
    record_property("love_concept_probs", probs)
    print("\n" + sweep.table())
    assert probs == sorted(probs)  # monotone over this sweep
    assert probs[3] > 10 * probs[1] and probs[0] < probs[1]
    assert " love" in sweep.rows[3].text and " love" not in sweep.rows[1].text
    plain = model.trace("I hate you because", generate=12, attention=False)
    assert sweep.rows[1].ids == plain.ids[plain.n_prompt :]


def test_caa_from_several_pairs_also_raises_the_concept(model, record_property):
    pos = ["I love you", "Love is wonderful", "I adore my friends", "What a lovely day"]
    neg = ["I hate you", "Hate is terrible", "I despise my friends", "What a hateful day"]
    sv = model.steering_vector(pos, neg, layer=9)
    assert sv.method == "caa" and sv.where == "generated" and sv.vector.shape == (576,)
    sweep = model.steer_sweep(
        "I think that you are", sv, strengths=(0, 4), generate=12, concept=" love"
    )
    probs = [r.concept_prob for r in sweep.rows]
    record_property("caa_love_concept_probs", probs)
    print("\n" + sweep.table())
    # measured: 0.0004 -> 0.0069 (" absolutely right to know how I am. I am so so")
    assert probs[1] > 3 * probs[0]
