"""Activation patching and early-exit decoding on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.capture import capture
from layerscope.engine.patching import (
    early_exit_generate,
    patch_edit,
    patch_sweep,
    patched_trace,
)
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
    n_layers = model.info.n_layers + 1
    assert sweep.prob.shape == (n_layers, len(clean))
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
        c = capture(model, corrupted, attention=False, edit=patch_edit(sweep, layer, pos))
        p = float(torch.softmax(c.logits, -1)[sweep.answer_id])
        assert p == pytest.approx(float(sweep.prob[layer, pos]), rel=1e-4, abs=1e-6)


def test_patched_trace_records_the_patch(model, sweep):
    tr = patched_trace(model, sweep, 1, 3, lens_top_k=3)
    assert tr.settings["patched"] == [1, 3]
    torch.testing.assert_close(tr.capture.resid[1, 3], sweep.clean_resid[1, 3].to(tr.capture.resid))
    assert tr.lens.top_ids.shape[2] == 3


def test_unequal_prompts_are_refused(model):
    with pytest.raises(InputError, match="same number of tokens"):
        patch_sweep(model, [1, 2, 3], [1, 2])


def test_patch_cell_outside_the_sweep_is_refused(sweep):
    with pytest.raises(InputError):
        patch_edit(sweep, 99, 0)


def test_early_exit_at_the_last_layer_is_greedy_generation(model, pair):
    ids = pair[0]
    full = early_exit_generate(model, ids, model.info.n_layers, 5)
    tr = model.trace(ids=ids, generate=5, attention=False)
    assert full == tr.ids[len(ids) :][: len(full)]
    early = early_exit_generate(model, ids, 1, 5)
    assert len(early) == 5
    # the first early token is the layer-1 lens argmax at the last prompt position
    assert early[0] == int(tr.lens.top_ids[1, len(ids) - 1, 0])
    with pytest.raises(InputError):
        early_exit_generate(model, ids, 99, 2)
