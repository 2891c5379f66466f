"""Per-head logit lens (direct logit attribution) on a tiny model."""

from __future__ import annotations

import pytest
import torch

from layerscope.engine.analyses.heads import freeze_final_norm, head_logit_lens
from layerscope.engine.capture import capture
from layerscope.errors import InputError


def test_frozen_norm_reproduces_the_norm_at_its_point(model, cap):
    x = cap.resid[-1, 3]
    frozen = freeze_final_norm(model, x)
    assert not frozen.centered  # RMSNorm
    expected = model.final_norm(x[None]).float()[0]
    torch.testing.assert_close(frozen(x) + frozen.bias, expected, rtol=1e-4, atol=1e-5)


def test_frozen_norm_detects_layernorm_centering():
    from tiny import tiny_model

    gpt2 = tiny_model("gpt2")
    c = capture(gpt2, gpt2.tokenizer.encode("Hello world"))
    x = c.resid[-1, -1]
    frozen = freeze_final_norm(gpt2, x)
    assert frozen.centered
    expected = gpt2.final_norm(x[None]).float()[0]
    torch.testing.assert_close(frozen(x) + frozen.bias, expected, rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_head_contributions_add_up_to_the_logit(model, cap):
    """heads + MLPs + embedding, each through the frozen norm, sum to the final logit exactly."""
    pos = 4
    target = int(model.unembed(model.final_norm(cap.resid[-1, pos])).argmax())
    hl = head_logit_lens(model, cap.resid, cap.head_out, pos, target, k=3)
    n_blocks, n_heads = model.info.n_blocks, model.info.n_heads
    assert hl.contrib.shape == (n_blocks, n_heads)
    assert hl.top_ids.shape == (n_blocks, n_heads, 3)
    frozen = freeze_final_norm(model, cap.resid[-1, pos])
    w_u = model.unembed_weight[target].float()
    rest = frozen(cap.resid[0, pos]) @ w_u + sum(frozen(m) @ w_u for m in cap.mlp_out[:, pos])
    logit = model.unembed(model.final_norm(cap.resid[-1, pos][None]))[0, target]
    total = float(hl.contrib.sum()) + float(rest)
    assert total == pytest.approx(float(logit), rel=1e-3, abs=1e-3)


def test_head_lens_rejects_bad_positions(model, cap):
    with pytest.raises(InputError):
        head_logit_lens(model, cap.resid, cap.head_out, 999, 0)
    with pytest.raises(InputError):
        head_logit_lens(model, cap.resid, cap.head_out, 0, 10**9)
