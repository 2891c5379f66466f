"""Activation patching sweeps on a tiny model (built on the Patch intervention)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.analyses.patching import patch_sweep
from layerscope.engine.capture import capture
from layerscope.engine.trace import run_trace
from layerscope.errors import InputError


@pytest.fixture(scope="module")
def model():
    from tiny import tiny_model

    return tiny_model("llama")


@pytest.fixture(scope="module")
def pair(model):
    clean = model.tokenizer.encode("The capital of France is")
    corrupted = list(clean)
    corrupted[2] = (clean[2] + 7) % model.info.vocab_size  # one token differs
    return clean, corrupted


@pytest.fixture(scope="module")
def sweep(model, pair):
    return patch_sweep(model, *pair)


def test_sweep_shape_and_endpoints(model, pair, sweep):
    clean, corrupted = pair
    assert sweep.prob.shape == (model.info.n_lens_layers, len(clean))
    # patching the last position at the last layer hands over the clean logits entirely
    assert sweep.prob[-1, -1] == pytest.approx(sweep.p_clean, rel=1e-4)
    # positions where the prompts agree change nothing at layer 0
    same = [t for t in range(len(clean)) if clean[t] == corrupted[t]]
    np.testing.assert_allclose(sweep.prob[0, same], sweep.p_corrupted, rtol=1e-4)
    assert sweep.restored[-1, -1] == pytest.approx(1.0, rel=1e-3)
    assert sweep.nbytes() > 0


def test_batched_sweep_matches_single_patched_runs(model, pair, sweep):
    _, corrupted = pair
    for layer, pos in [(0, 3), (1, 2), (2, 4)]:
        c = capture(model, corrupted, attention=False, interventions=[sweep.cell_patch(layer, pos)])
        p = float(torch.softmax(c.logits, -1)[sweep.answer_id])
        assert p == pytest.approx(float(sweep.prob[layer, pos]), rel=1e-4, abs=1e-6)


def test_a_patched_run_is_a_trace_with_the_patch_attached(model, pair, sweep):
    clean, corrupted = pair
    patch = sweep.cell_patch(1, 3)
    tr = run_trace(model, ids=corrupted, lens_top_k=3, interventions=[patch])
    assert tr.interventions == [patch.model_dump(mode="json")]
    assert tr.interventions[0]["point"] == "resid_post" and tr.interventions[0]["block"] == 0
    clean_resid = capture(model, clean, attention=False).resid
    torch.testing.assert_close(tr.capture.resid[1, 3], clean_resid[1, 3])
    assert tr.lens.top_ids.shape[2] == 3


def test_unequal_prompts_are_refused(model):
    with pytest.raises(InputError, match="same number of tokens"):
        patch_sweep(model, [1, 2, 3], [1, 2])


def test_patch_cell_outside_the_sweep_is_refused(sweep):
    with pytest.raises(InputError):
        sweep.cell_patch(99, 0)
