"""Per-head logit lens (direct logit attribution) and PCA trajectories on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.analysis import freeze_final_norm, head_logit_lens, pca_trajectories
from layerscope.engine.capture import capture
from layerscope.errors import InputError


@pytest.fixture(scope="module")
def model():
    from tiny import tiny_model

    return tiny_model("llama")


@pytest.fixture(scope="module")
def cap(model):
    return capture(model, model.tokenizer.encode("The capital of France is Paris."))


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
    n_layers, n_heads = model.info.n_layers, model.info.n_heads
    assert hl.contrib.shape == (n_layers, n_heads)
    assert hl.top_ids.shape == (n_layers, n_heads, 3)
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


def test_pca_trajectories_shape_and_determinism(model, cap):
    a = pca_trajectories(model, cap.resid, [1, 3])
    b = pca_trajectories(model, cap.resid, [1, 3])
    assert a.coords.shape == (model.info.n_layers + 1, 2, 2)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert 0 < a.explained[0] <= 1 and a.explained[1] <= a.explained[0]
    single = pca_trajectories(model, cap.resid, [2], normed=False)
    assert single.coords.shape == (model.info.n_layers + 1, 1, 2)
    with pytest.raises(InputError):
        pca_trajectories(model, cap.resid, [100])
