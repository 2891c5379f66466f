"""The sub-layer lens and the pipeline: the stops, the identities, the logit bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.analyses.dataflow import (
    pipeline,
    stage_labels,
    sublayer_labels,
    sublayer_lens,
    sublayer_stack,
)
from layerscope.engine.analyses.heads import freeze_final_norm
from layerscope.engine.capture import capture
from layerscope.errors import InputError

TEXT = "The capital of France is Paris. The capital of Italy is"


@pytest.fixture(scope="module", params=["llama", "qwen2", "gemma2", "gpt2", "gpt_neox"])
def family_cap(request):
    from tiny import tiny_model

    m = tiny_model(request.param)
    return m, capture(m, m.tokenizer.encode(TEXT))


def test_labels():
    assert sublayer_labels(2) == ["h_0", "b0·attn", "h_1", "b1·attn", "h_2"]
    assert stage_labels(2) == ["embed", "b0·attn", "b0·mlp", "b1·attn", "b1·mlp", "final norm"]


def test_sublayers_add_up_to_the_block_output(family_cap):
    """resid_mid + mlp_out = resid_post (GPT-NeoX: resid_pre + attn_out + mlp_out)."""
    m, cap = family_cap
    post = cap.resid[1:]
    torch.testing.assert_close(cap.resid_mid + cap.mlp_out, post, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        cap.resid[:-1] + cap.attn_out + cap.mlp_out, post, rtol=1e-4, atol=1e-4
    )
    stack = sublayer_stack(cap)
    assert stack.shape[0] == 2 * m.info.n_blocks + 1
    torch.testing.assert_close(stack[0::2], cap.resid)
    torch.testing.assert_close(stack[1::2], cap.resid_mid)


@torch.no_grad()
def test_last_stop_reads_the_models_logits(family_cap):
    m, cap = family_cap
    lens = sublayer_lens(m, cap, k=5)
    assert lens.top_ids.shape == (2 * m.info.n_blocks + 1, cap.n_tokens, 5)
    x = torch.tensor([cap.ids])
    logits = m.lens_model.forward(x).logits[0].float()  # [T, V], the model's own
    probs = torch.softmax(logits, dim=-1)
    top = torch.topk(probs, 5, dim=-1)
    np.testing.assert_array_equal(lens.top_ids[-1], top.indices.numpy())
    np.testing.assert_allclose(lens.top_probs[-1], top.values.numpy(), rtol=1e-4, atol=1e-6)
    # the mid-layer stops differ from the block outputs (attention added something)
    assert not np.allclose(lens.top_probs[1], lens.top_probs[2])


@torch.no_grad()
def test_pipeline_contributions_add_up_to_the_logit(family_cap):
    m, cap = family_cap
    pos = 5
    p = pipeline(m, cap, pos)
    n = 2 * m.info.n_blocks
    assert p.stages == stage_labels(m.info.n_blocks) and p.stops == sublayer_labels(n // 2)
    assert p.resid_norm.shape == (n + 1,) and p.dla.shape == (n,)
    assert p.add_norm.shape == p.add_cos.shape == (n,)
    assert p.lens_top_ids.shape == p.lens_top_probs.shape == (n + 1, 5)
    logits = m.lens_model.forward(torch.tensor([cap.ids])).logits[0, pos].float()
    assert p.target_id == int(logits.argmax())
    assert p.target_logit == pytest.approx(float(logits[p.target_id]), rel=1e-4, abs=1e-4)
    # embedding + every sub-layer + the norm's bias = the logit before any softcap
    total = p.embed_dla + float(p.dla.sum()) + p.bias_dla
    cap_c = m.logit_softcap
    softcapped = cap_c * np.tanh(total / cap_c) if cap_c else total
    assert softcapped == pytest.approx(p.target_logit, rel=1e-3, abs=1e-3)
    # the same, term by term, against a direct computation
    frozen = freeze_final_norm(m, cap.resid[-1, pos])
    w_u = m.unembed_weight[p.target_id].float()
    assert p.dla[1] == pytest.approx(float(frozen(cap.mlp_out[0, pos]) @ w_u), rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(
        p.resid_norm, sublayer_stack(cap)[:, pos].norm(dim=-1).numpy(), rtol=1e-5
    )
    cos = torch.nn.functional.cosine_similarity(cap.attn_out[1, pos], cap.resid[1, pos], dim=0)
    assert p.add_cos[2] == pytest.approx(float(cos), abs=1e-5)
    assert p.add_norm[3] == pytest.approx(float(cap.mlp_out[1, pos].norm()), rel=1e-5)
    probs = torch.softmax(logits, dim=-1)
    assert p.lens_target_prob[-1] == pytest.approx(float(probs[p.target_id]), rel=1e-4)
    assert p.lens_top_ids[-1, 0] == p.target_id


def test_pipeline_takes_a_target_and_rejects_bad_input(model, cap):
    p = pipeline(model, cap, 2, target_id=7)
    assert p.target_id == 7
    with pytest.raises(InputError):
        pipeline(model, cap, cap.n_tokens)
    with pytest.raises(InputError):
        pipeline(model, cap, 0, target_id=10**9)
