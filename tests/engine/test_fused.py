"""The compiled fused reduction gives the eager path's statistics (to float32 rounding)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from layerscope.engine import fused
from layerscope.engine.capture import capture
from layerscope.engine.lens import compute_lens
from tiny import tiny_model

PROMPT = "The capital of France is Paris. The capital of Italy is Rome. Hello"


@pytest.fixture(scope="module")
def compiled():
    if not fused.enable():
        pytest.fail("torch.compile could not build the fused lens kernel on this machine")
    yield
    fused.disable()


@pytest.mark.parametrize("family", ["llama", "gemma2"])  # plain and softcapped
def test_fused_equals_eager(compiled, family):
    model = tiny_model(family)
    ids = model.tokenizer.encode(PROMPT)
    cap = capture(model, ids, attention=False)
    fast = compute_lens(model, cap.resid, ids, k=5, chunk_rows=9)  # odd chunks: tails too
    assert fused.active(cap.resid.device)
    fused.disable()
    try:
        slow = compute_lens(model, cap.resid, ids, k=5, chunk_rows=9)
    finally:
        assert fused.enable()
    for key, a in slow.arrays().items():
        b = fast.arrays()[key]
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, atol=2e-5, rtol=1e-5, err_msg=key)
        else:
            np.testing.assert_array_equal(b, a, err_msg=key)


def test_fused_traces_are_deterministic(compiled):
    model = tiny_model("qwen2")
    first = json.dumps(model.trace(PROMPT, generate=4, temperature=1.0, seed=3).to_dict())
    assert json.dumps(model.trace(PROMPT, generate=4, temperature=1.0, seed=3).to_dict()) == first
