"""Attention-layer and MLP-neuron panels: their numbers against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.analyses.components import attention_layer, top_neurons
from layerscope.engine.analyses.heads import freeze_final_norm, head_logit_lens
from layerscope.engine.capture import capture
from layerscope.errors import InputError


@torch.no_grad()
def test_attention_layer_matches_the_capture_and_the_head_lens(model, cap):
    block, pos = 1, 5
    layer = attention_layer(model, cap, block, pos)
    n_heads = model.info.n_heads
    assert layer.pattern.shape == (n_heads, cap.n_tokens)
    np.testing.assert_allclose(layer.pattern, cap.attn[block, :, pos].numpy())
    np.testing.assert_allclose(layer.pattern.sum(axis=1), 1.0, atol=1e-5)
    hl = head_logit_lens(model, cap.resid, cap.head_out, pos, layer.target_id)
    np.testing.assert_allclose(layer.dla, hl.contrib[block], rtol=1e-5, atol=1e-6)
    # the heads' outputs through W_O add up to the attention output (no o_proj bias in llama)
    w_o = model.head_out_weight(block).float()
    d_head = model.info.d_head
    outs = [
        w_o[:, h * d_head : (h + 1) * d_head] @ cap.head_out[block, pos, h] for h in range(n_heads)
    ]
    np.testing.assert_allclose(layer.out_norm, [float(o.norm()) for o in outs], rtol=1e-5)
    torch.testing.assert_close(sum(outs), cap.attn_out[block, pos], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2", "gpt2", "gpt_neox"])
@torch.no_grad()
def test_mlp_out_weight_is_the_down_projection(family):
    from tiny import tiny_model

    m = tiny_model(family)
    c = capture(m, m.tokenizer.encode("Hello world"))
    lm = m.lens_model
    down = lm.spec.get(lm.blocks[1], lm.spec.mlp_down)
    w = m.mlp_out_weight(1)
    assert w.shape == (m.info.d_model, m.info.d_mlp)
    bias = getattr(down, "bias", None)
    expected = down(c.mlp_post[1])
    torch.testing.assert_close(c.mlp_post[1] @ w.T + (0 if bias is None else bias), expected)


@torch.no_grad()
def test_top_neurons(model, cap):
    block, pos = 0, 4
    nr = top_neurons(model, cap, block, pos, k=6, n_tokens=3)
    acts = cap.mlp_post[block, pos]
    assert nr.neurons.shape == nr.acts.shape == nr.dla.shape == (6,)
    assert nr.promoted.shape == nr.suppressed.shape == (6, 3)
    np.testing.assert_allclose(nr.acts, acts[nr.neurons].numpy())
    assert list(nr.acts) == sorted(nr.acts, reverse=True)
    assert nr.acts[0] == pytest.approx(float(acts.max()))
    frozen = freeze_final_norm(model, cap.resid[-1, pos])
    w_out, w_u = model.mlp_out_weight(block).float(), model.unembed_weight.float()
    for j, n in enumerate(nr.neurons):
        vec = float(acts[n]) * w_out[:, n]
        assert nr.dla[j] == pytest.approx(float(frozen(vec) @ w_u[nr.target_id]), rel=1e-4)
        direction = w_u @ frozen(w_out[:, n])
        assert list(nr.promoted[j]) == torch.topk(direction, 3).indices.tolist()
        assert list(nr.suppressed[j]) == torch.topk(-direction, 3).indices.tolist()
    # every neuron together is the MLP's whole direct contribution (llama's MLP has no bias)
    every = top_neurons(model, cap, block, pos, k=model.info.d_mlp)
    whole = float(frozen(cap.mlp_out[block, pos]) @ w_u[every.target_id])
    assert float(every.dla.sum()) == pytest.approx(whole, rel=1e-3, abs=1e-4)


def test_components_reject_bad_input(model, cap):
    with pytest.raises(InputError):
        attention_layer(model, cap, model.info.n_blocks, 0)
    with pytest.raises(InputError):
        top_neurons(model, cap, 0, cap.n_tokens)
    with pytest.raises(InputError):
        attention_layer(model, capture(model, cap.ids, attention=False), 0, 0)
