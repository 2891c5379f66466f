"""Token attribution: exact on a linear toy model, complete and reversible on tiny real families."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from torch import nn

from layerscope.engine.analyses.attribution import attribute, baseline_ids, target_token_id
from layerscope.engine.interventions import Ablate
from layerscope.engine.model import Model
from layerscope.errors import InputError
from layerscope.models.base import ForwardOutput, HookSite, LensModel, ModelInfo, Tokenizer

# ---------------------------------------------------------------------------------- linear toy
V, D, T_MAX = 12, 8, 16
BIG = 30.0  # the competing logit: log p(target) = l - log(e^l + e^BIG + ...) ~ l - BIG, linear


class _ToyTokenizer(Tokenizer):
    pad_id = 0

    def encode(self, text: str) -> list[int]:
        return [1 + (ord(c) % (V - 2)) for c in text]

    def encode_chat(self, messages):
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(map(str, ids))

    def token_text(self, token_id: int) -> str:
        return f"t{token_id}"

    @property
    def stop_ids(self) -> frozenset[int]:
        return frozenset()


class LinearToy(LensModel):
    """No blocks; logit of token 1 = sum_t w_t . e(x_t) (linear in the embeddings), token 0 has
    the constant logit BIG, so log p(token 1) = that sum - BIG up to e^(l - BIG)."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Embedding(V, D)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(V, D, generator=g) * 0.3)
        self.w = torch.randn(T_MAX, D, generator=g) * 0.3
        self.tokenizer = _ToyTokenizer()
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.info = ModelInfo("toy", "toy", 0, 1, D, D, D, V, T_MAX, 0)

    blocks = ()

    def head_out_proj(self, layer):
        raise NotImplementedError

    def hook_sites(self, block) -> dict[str, HookSite]:
        raise NotImplementedError

    def head_out_weight(self, layer):
        raise NotImplementedError

    def mlp_out_weight(self, block):
        raise NotImplementedError

    def embedding_module(self) -> nn.Module:
        return self.emb

    def final_norm(self, h):
        return h

    @property
    def unembed_weight(self):
        raise NotImplementedError

    def forward(
        self, ids, *, past=None, output_attentions=False, last_logits_only=False, grad=False
    ) -> ForwardOutput:
        e = self.emb(ids)  # [B, T, D]
        linear = (e * self.w[: ids.shape[1]]).sum(dim=(1, 2))  # [B]
        logits = torch.full((ids.shape[0], 1, V), -BIG)
        logits[:, 0, 0] = BIG
        logits = logits.clone()
        logits[:, 0, 1] = linear
        return ForwardOutput(logits=logits, attentions=None, past=None)

    def select_cache_rows(self, past, rows):
        return past


@pytest.mark.parametrize("steps", [1, 8, 64])
def test_integrated_gradients_is_exact_on_a_linear_model(steps):
    toy = LinearToy()
    ids = [3, 5, 7, 2, 9]
    a = attribute(toy, ids, target=1, steps=steps)
    base, _ = baseline_ids(toy, ids)
    x, x0 = toy.emb.weight[ids].detach(), toy.emb.weight[base].detach()
    analytic = ((x - x0) * toy.w[: len(ids)]).sum(dim=-1).double().numpy()  # (x - x0) . grad f
    np.testing.assert_allclose(a.scores, analytic, atol=1e-5)
    assert a.scores[0] == 0.0  # the first token is kept in the baseline
    assert abs(a.delta) < 1e-4 and a.rel_delta < 1e-4
    assert a.f_input - a.f_baseline == pytest.approx(float(analytic.sum()), abs=1e-4)
    assert a.steps == steps and a.baseline_ids == base


def test_gradient_x_input_is_exact_on_a_linear_model():
    toy = LinearToy()
    ids = [3, 5, 7]
    a = attribute(toy, ids, target=1, method="gradient_x_input")
    x = toy.emb.weight[ids].detach()
    np.testing.assert_allclose(a.scores, (x * toy.w[:3]).sum(-1).double().numpy(), atol=1e-5)
    assert a.delta is None and a.f_baseline is None and a.rel_delta is None


# ---------------------------------------------------------------------------------- tiny models
@pytest.fixture(scope="module")
def prompt(model):
    return model.tokenizer.encode("The capital of France is")


@pytest.fixture(scope="module")
def ig(model, prompt):
    return attribute(model, prompt)


def test_ig_on_a_tiny_model_is_complete(model, prompt, ig):
    assert len(ig.scores) == len(ig.tokens) == len(prompt)
    assert ig.tokens == [model.tokenizer.token_text(i) for i in prompt]
    assert ig.target_id == int(model.trace(ids=prompt).lens.top_ids[-1, -1, 0])
    assert ig.rel_delta < 0.03
    assert float(ig.scores.sum()) == pytest.approx(ig.f_input - ig.f_baseline + ig.delta, abs=1e-6)
    assert ig.method == "integrated_gradients" and ig.steps == 64
    assert "pad token" in ig.baseline
    d = ig.to_dict()
    assert d["scores"] == pytest.approx(ig.scores.tolist()) and d["rel_delta"] == ig.rel_delta


def test_attribution_is_deterministic_and_leaves_no_hooks(model, prompt, ig):
    fresh = model.trace(ids=prompt)
    again = attribute(model, prompt)
    np.testing.assert_array_equal(again.scores, ig.scores)
    assert again.delta == ig.delta
    after = model.trace(ids=prompt)
    np.testing.assert_array_equal(after.lens.top_probs, fresh.lens.top_probs)
    assert not any(p.grad is not None for p in model.lens_model.hf.parameters())
    emb = model.embedding_module()
    assert not emb._forward_hooks and not emb._forward_pre_hooks


@pytest.mark.parametrize("family", ["qwen2", "gemma2", "gpt2", "gpt_neox"])
def test_every_family_exposes_its_embedding(family):
    from tiny import tiny_model

    m = tiny_model(family)
    a = m.attribute("Hello world! How are", steps=32)
    assert np.isfinite(a.scores).all() and a.rel_delta < 0.05


def test_interventions_change_the_attribution_but_not_the_default_target(model, prompt, ig):
    ablate = [Ablate(point="attn_out", block=1)]
    a = attribute(model, prompt, interventions=ablate)
    assert a.target_id == ig.target_id  # the clean run's top prediction
    assert a.interventions == [ablate[0].model_dump(mode="json")]
    assert not np.allclose(a.scores, ig.scores)
    assert a.f_input != ig.f_input


def test_target_text_must_be_one_token(model, prompt):
    text = model.tokenizer.token_text(prompt[1])
    assert target_token_id(model, text) == prompt[1]
    with pytest.raises(InputError, match="single token"):
        target_token_id(model, "xqzj Paris capital")
    with pytest.raises(InputError, match="outside the vocabulary"):
        target_token_id(model, 10**6)
    with pytest.raises(InputError, match="empty"):
        target_token_id(model, "")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be"),
        ({"steps": 2.5}, "steps must be"),
        ({"method": "saliency"}, "unknown attribution method"),
        ({"baseline": "zeros"}, "unknown baseline"),
        ({"baseline": 10**6}, "outside the vocabulary"),
    ],
)
def test_bad_settings_are_refused(model, prompt, kwargs, message):
    with pytest.raises(InputError, match=message):
        attribute(model, prompt, **kwargs)


def test_model_method_takes_text(model, prompt):
    assert isinstance(model, Model)
    text = model.tokenizer.token_text(prompt[1])
    a = model.attribute("The capital of France is", target=text, steps=4)
    assert a.target == text and a.steps == 4
    assert "completeness" in a.format() and "[  0]" in a.format()
    with pytest.raises(InputError, match="empty"):
        model.attribute("   ")
