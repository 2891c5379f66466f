"""The one hook installer: every point, any batch, prefill and cached steps, always removed."""

from __future__ import annotations

import pytest
import torch

from layerscope.engine.hooks import Hooks
from layerscope.errors import InputError
from layerscope.models.base import HOOK_POINTS, StopForward
from tiny import FAMILIES, tiny_model

PROMPT = "The capital of France is Paris. Hello world"


def n_hooks(model) -> int:
    total = 0
    for block in range(model.info.n_blocks):
        for site in model.hook_sites(block).values():
            total += len(site.module._forward_hooks) + len(site.module._forward_pre_hooks)
    return total


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny_model(request.param)


def test_every_point_is_recorded_with_its_shape(model):
    ids = model.tokenizer.encode(PROMPT)
    info = model.info
    hooks = Hooks(model, record=HOOK_POINTS)
    x = torch.tensor([ids, ids])  # batch of two
    with hooks.installed():
        model.forward(x)
    t = len(ids)
    want = {
        "head_out": (2, t, info.n_heads, info.d_head),
        "mlp_post": (2, t, info.d_mlp),
    }
    for name in HOOK_POINTS:
        got = hooks.stacked(name)
        assert got.shape == (info.n_blocks, *want.get(name, (2, t, info.d_model))), name
    # the block's pieces add up: resid_mid = resid_pre + attn_out, then the MLP's write
    mid = hooks.stacked("resid_mid")
    torch.testing.assert_close(mid, hooks.stacked("resid_pre") + hooks.stacked("attn_out"))
    post = hooks.stacked("resid_post")
    base = hooks.stacked("resid_pre") if info.parallel_residual else mid
    if info.parallel_residual:
        base = base + hooks.stacked("attn_out")
    torch.testing.assert_close(post, base + hooks.stacked("mlp_out"), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(post[:-1], hooks.stacked("resid_pre")[1:])
    assert n_hooks(model) == 0


def test_kv_cached_steps_record_the_same_values_as_one_pass(model):
    ids = model.tokenizer.encode(PROMPT)
    one = Hooks(model, record=HOOK_POINTS)
    with one.installed():
        model.forward(torch.tensor([ids]))
    steps = Hooks(model, record=HOOK_POINTS)
    with steps.installed():
        out = model.forward(torch.tensor([ids[:-3]]))
        for pos in range(len(ids) - 3, len(ids)):
            steps.offset = pos
            out = model.forward(torch.tensor([[ids[pos]]]), past=out.past)
    for name in HOOK_POINTS:
        torch.testing.assert_close(steps.stacked(name), one.stacked(name), atol=1e-4, rtol=1e-4)


def test_edits_see_absolute_positions_across_steps(model):
    ids = model.tokenizer.encode(PROMPT)
    seen: list[tuple[int, int]] = []

    def edit(name, block, x, positions):
        seen.append((positions.start, positions.stop))
        return None

    hooks = Hooks(model, edit=edit, edit_at=[("resid_post", 0)])
    with hooks.installed():
        out = model.forward(torch.tensor([ids]))
        hooks.offset = len(ids)
        model.forward(torch.tensor([[ids[0]]]), past=out.past)
    assert seen == [(0, len(ids)), (len(ids), len(ids) + 1)]


def test_an_edit_of_resid_mid_moves_the_stream_by_the_same_amount(model):
    ids = model.tokenizer.encode(PROMPT)
    shift = torch.zeros(model.info.d_model)
    shift[0] = 3.0

    def edit(name, block, x, positions):
        return x + shift

    plain = Hooks(model, record=["resid_mid", "resid_pre"])
    with plain.installed():
        model.forward(torch.tensor([ids]))
    moved = Hooks(model, record=["resid_mid", "attn_out"], edit=edit, edit_at=[("resid_mid", 1)])
    with moved.installed():
        model.forward(torch.tensor([ids]))
    torch.testing.assert_close(moved.values("resid_mid", 1), plain.values("resid_mid", 1) + shift)
    torch.testing.assert_close(moved.values("resid_mid", 0), plain.values("resid_mid", 0))


def test_hooks_are_removed_when_the_pass_raises(model):
    ids = model.tokenizer.encode(PROMPT)

    def boom(name, block, x, positions):
        raise RuntimeError("boom")

    hooks = Hooks(model, record=HOOK_POINTS, edit=boom, edit_at=[("mlp_out", 1)])
    with pytest.raises(RuntimeError, match="boom"), hooks.installed():
        assert n_hooks(model) > 0
        model.forward(torch.tensor([ids]))
    assert n_hooks(model) == 0


def test_stop_before_ends_the_pass_with_the_stream_and_the_cache_so_far(model):
    ids = model.tokenizer.encode(PROMPT)
    full = Hooks(model, record=[("resid_pre", 1)])
    with full.installed():
        model.forward(torch.tensor([ids]))
    stop = Hooks(model, stop_before=1)
    with stop.installed(), pytest.raises(StopForward) as caught:
        model.forward(torch.tensor([ids]))
    torch.testing.assert_close(caught.value.value, full.values("resid_pre", 1))
    assert caught.value.past is not None
    assert n_hooks(model) == 0


def test_unknown_points_and_blocks_are_clear_errors(model):
    with pytest.raises(InputError, match="unknown hook point"):
        Hooks(model, record=["resid"])
    with pytest.raises(InputError, match="block 9"):
        Hooks(model, record=[("mlp_out", 9)])
