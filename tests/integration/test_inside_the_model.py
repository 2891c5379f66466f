"""Inside the real default model: attention against Hugging Face's own, and the induction probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import layerscope
from layerscope.engine.analyses.attention import induction_probe
from layerscope.engine.analyses.dataflow import pipeline, sublayer_lens

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model():
    return layerscope.load(None, device="cpu")


@torch.no_grad()
def test_trace_attention_equals_hugging_faces(model):
    trace = model.trace("The capital of France is Paris, and the capital of Italy is")
    hf = model.lens_model.hf
    assert hf.config._attn_implementation == "eager"  # attention probabilities need eager
    out = hf(torch.tensor([trace.ids]), output_attentions=True)
    ours = trace.attention
    assert len(ours) == len(out.attentions) == model.info.n_blocks
    for mine, theirs in zip(ours, out.attentions, strict=True):
        assert mine.shape == theirs.shape
        torch.testing.assert_close(mine.float(), theirs.float(), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_sublayer_readout_and_pipeline_on_the_real_model(model):
    trace = model.trace("The capital of France is")
    cap = trace.capture
    lens = sublayer_lens(model, cap)
    np.testing.assert_array_equal(lens.top_ids[-1], trace.lens.top_ids[-1, :, :5])
    p = pipeline(model, cap, len(trace.ids) - 1)
    assert trace.token_text[p.target_id] == " Paris"
    total = p.embed_dla + float(p.dla.sum()) + p.bias_dla
    assert total == pytest.approx(p.target_logit, rel=1e-3, abs=1e-2)


def test_induction_probe_finds_induction_heads(model, record_property):
    probe = induction_probe(model, n_tokens=50, seed=0)
    ind = probe.stats["induction"]
    median = float(np.median(ind))
    top = probe.top
    heads = ", ".join(f"{b}.{h}={s:.3f}" for b, h, s in top)
    print(
        f"\ninduction probe (50 random tokens x 2, seed 0): median head {median:.4f}; top {heads}"
    )
    record_property("induction_median", median)
    record_property("induction_top", heads)
    assert top[0][2] > 0.3
    assert top[0][2] > 5 * median
