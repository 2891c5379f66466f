"""What every adapter promises the engine: hook sites, gradients on request, a selectable cache."""

from __future__ import annotations

import pytest
import torch

from layerscope.engine.hooks import Hooks
from layerscope.models.base import MODULE_POINTS
from tiny import FAMILIES, tiny_model


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny_model(request.param)


def test_every_block_names_every_module_point(model):
    for block in range(model.info.n_blocks):
        sites = model.hook_sites(block)
        assert tuple(sites) == MODULE_POINTS
        assert all(site.io in ("input", "output") for site in sites.values())


def test_gradients_flow_only_when_asked(model):
    ids = torch.tensor([model.tokenizer.encode("Hello world")])
    with torch.inference_mode():
        assert not model.forward(ids).logits.requires_grad
    steer = torch.zeros(model.info.d_model, requires_grad=True)

    def add(name, block, x, positions):
        return x + steer

    hooks = Hooks(model, edit=add, edit_at=[("resid_post", 0)], grad=True)
    with hooks.installed():
        logits = model.forward(ids, grad=True).logits
    logits[0, -1].max().backward()
    assert steer.grad is not None and steer.grad.abs().sum() > 0


def test_cache_rows_can_be_selected_and_reordered(model):
    a = model.tokenizer.encode("Hello world, how")
    b = model.tokenizer.encode("The capital of")[: len(a)]
    b += [a[-1]] * (len(a) - len(b))
    both = model.forward(torch.tensor([a, b]))
    past = model.select_cache_rows(both.past, torch.tensor([1, 0, 1]))
    nxt = torch.tensor([[5], [5], [5]])
    got = model.forward(nxt, past=past, last_logits_only=True).logits[:, -1]
    alone = {
        0: model.forward(torch.tensor([[*a, 5]]), last_logits_only=True).logits[0, -1],
        1: model.forward(torch.tensor([[*b, 5]]), last_logits_only=True).logits[0, -1],
    }
    for row, source in enumerate([1, 0, 1]):
        torch.testing.assert_close(got[row], alone[source], atol=1e-4, rtol=1e-4)
