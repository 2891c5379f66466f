"""Prompt comparison: residual cosines per layer, divergence, prompts of different lengths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.analyses.comparison import DIVERGE_BELOW, compare
from layerscope.errors import InputError


def _cos(u, v):
    u, v = u.double(), v.double()
    return float(u @ v / (u.norm() * v.norm()))


def test_a_prompt_compared_with_itself_never_diverges(model):
    ids = model.tokenizer.encode("The capital of France is")
    c = compare(model, ids, ids)
    np.testing.assert_allclose(c.cos_last, 1.0, atol=1e-6)
    np.testing.assert_allclose(c.cos_aligned, 1.0, atol=1e-6)
    assert c.diverge == [] and c.first_diverge is None and c.biggest_drops == []
    assert c.same_top.all() and c.threshold == DIVERGE_BELOW


def test_prompts_of_different_lengths(model):
    a = model.tokenizer.encode("The capital of France is")
    b = model.tokenizer.encode("Hello world! How are you today?")
    c = model.compare(a, b, positions=(1, 3))
    n_layers = model.info.n_lens_layers
    assert c.cos_last.shape == c.cos_pair.shape == (n_layers,)
    assert c.cos_aligned.shape == (n_layers, min(len(a), len(b)))
    ra, rb = c.trace_a.capture.resid, c.trace_b.capture.resid
    for layer in range(n_layers):
        assert c.cos_last[layer] == pytest.approx(_cos(ra[layer, -1], rb[layer, -1]), abs=1e-9)
        assert c.cos_pair[layer] == pytest.approx(_cos(ra[layer, 1], rb[layer, 3]), abs=1e-9)
    assert c.ids_a == a and c.ids_b == b and c.positions == (1, 3)
    assert c.trace_a.capture.attn is not None  # attention for the side-by-side view


def test_divergence_follows_the_stated_threshold(model):
    a = model.tokenizer.encode("The capital of France is")
    b = model.tokenizer.encode("The capital of Italy is")
    cos = compare(model, a, b).cos_last
    threshold = float(np.sort(cos)[len(cos) // 2])  # about half the layers fall below
    c = compare(model, a, b, threshold=threshold)
    assert c.diverge == [i for i, x in enumerate(cos) if x < threshold]
    if c.first_diverge is not None:
        assert all(x < threshold for x in cos[c.first_diverge :])
        assert c.first_diverge == 0 or cos[c.first_diverge - 1] >= threshold
    drops = cos[:-1] - cos[1:]
    assert c.biggest_drops[0] == int(np.argmax(drops)) + 1
    d = c.to_dict()
    assert d["diverge"] == c.diverge and len(d["cos_last"]) == len(cos)


def test_comparison_leaves_no_hooks(model):
    ids = model.tokenizer.encode("Hello world")
    fresh = model.trace(ids=ids)
    model.compare(ids, model.tokenizer.encode("How are you"))
    torch.testing.assert_close(model.trace(ids=ids).capture.resid, fresh.capture.resid)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"positions": (0, 99)}, "outside prompt b"),
        ({"positions": (-1, 0)}, "outside prompt a"),
        ({"positions": (1,)}, "a pair"),
        ({"threshold": 2.0}, "threshold"),
    ],
)
def test_bad_input_is_refused(model, kwargs, message):
    ids = model.tokenizer.encode("Hello world")
    with pytest.raises(InputError, match=message):
        compare(model, ids, ids, **kwargs)
    with pytest.raises(InputError, match="empty"):
        model.compare("", "Hello")
