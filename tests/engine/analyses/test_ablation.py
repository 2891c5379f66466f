"""Heads by role, and every head ablated on its own."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.engine.analyses.ablation import head_sweep, heads_with_role
from layerscope.engine.analyses.attention import THRESHOLDS
from layerscope.engine.analyses.effect import effect
from layerscope.engine.interventions import Ablate
from layerscope.engine.trace import run_trace
from layerscope.errors import InputError


def test_heads_with_role_reads_the_role_scores():
    stats = {name: np.zeros((3, 2), dtype=np.float32) for name in THRESHOLDS}
    stats["induction"][2, 1] = 0.45
    stats["induction"][1, 0] = 0.9
    stats["induction"][0, 0] = 0.39
    assert heads_with_role(stats, "induction") == [(1, 0), (2, 1)]  # highest first
    assert heads_with_role(stats, "induction", threshold=0.3) == [(1, 0), (2, 1), (0, 0)]
    assert heads_with_role(stats, "previous_token") == []
    with pytest.raises(InputError, match="unknown head role"):
        heads_with_role(stats, "copying")


def test_heads_with_role_takes_a_trace_and_feeds_an_ablation(model):
    tr = run_trace(model, "1 2 3 4 5 1 2 3 4 5")
    heads = heads_with_role(tr, "first_token", threshold=0.0)
    assert len(heads) == model.info.n_blocks * model.info.n_heads
    scores = tr.head_stats()["first_token"]
    assert [scores[b, h] for b, h in heads] == sorted(scores.ravel(), reverse=True)
    Ablate(heads=heads[:3])  # the pairs are what Ablate(heads=...) takes


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_head_sweep_matches_one_ablation_at_a_time(model, mode):
    ids = model.tokenizer.encode("The capital of France is")
    sweep = head_sweep(model, ids, mode=mode, batch_size=3)
    assert sweep.prob.shape == (model.info.n_blocks, model.info.n_heads)
    for b, h in [(0, 0), (1, 2), (1, 3)]:
        e = effect(model, ids, [Ablate(heads=[(b, h)], mode=mode)], target_id=sweep.target_id)
        assert sweep.prob[b, h] == pytest.approx(e.p_new, abs=1e-5)
        assert sweep.p_clean == pytest.approx(e.p_clean, abs=1e-7)
    ranking = sweep.ranking()
    assert [d for *_, d in ranking] == sorted(d for *_, d in ranking)
    assert len(sweep.to_dict()["ranking"]) == min(10, sweep.prob.size)
