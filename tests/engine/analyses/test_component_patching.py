"""Component patching (heads, attention, MLP, residual) on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.analyses.component_patching import component_patch_sweep
from layerscope.engine.capture import capture
from layerscope.engine.interventions import Patch
from layerscope.errors import InputError


@pytest.fixture(scope="module")
def pair(model):
    clean = model.tokenizer.encode("The capital of France is")
    corrupted = list(clean)
    corrupted[2] = (clean[2] + 7) % model.info.vocab_size
    return clean, corrupted


@pytest.fixture(scope="module")
def sweep(model, pair):
    return component_patch_sweep(model, *pair)


def _p(model, ids, patches, answer):
    c = capture(model, ids, attention=False, interventions=patches)
    return float(torch.softmax(c.logits, -1)[answer])


def test_shapes_and_endpoints(model, pair, sweep):
    info, n = model.info, len(pair[0])
    assert sweep.prob["resid"].shape == (info.n_blocks + 1, n)
    assert sweep.prob["attn_out"].shape == sweep.prob["mlp_out"].shape == (info.n_blocks, n)
    assert sweep.prob["head_out"].shape == (info.n_blocks, info.n_heads)
    assert sweep.restored["resid"][-1, -1] == pytest.approx(1.0, rel=1e-3)
    assert set(sweep.restored) == {"resid", "attn_out", "mlp_out", "head_out"}


def test_patching_a_run_with_itself_changes_nothing(model, pair):
    clean = pair[0]
    s = component_patch_sweep(model, clean, clean, skip_shared_prefix=False)
    assert s.p_clean == pytest.approx(s.p_corrupted, rel=1e-6)
    for comp, prob in s.prob.items():
        np.testing.assert_allclose(prob, s.p_clean, rtol=1e-4, err_msg=comp)
        assert not s.restored[comp].any()


def test_full_residual_at_the_last_layer_reproduces_the_clean_output(model, pair):
    clean, corrupted = pair
    last = model.info.n_blocks - 1
    patch = Patch(point="resid_post", block=last, source_ids=tuple(clean))
    patched = capture(model, corrupted, attention=False, interventions=[patch]).logits
    torch.testing.assert_close(patched, capture(model, clean, attention=False).logits)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_all_heads_of_a_block_equal_its_attention_output(family, pair):
    from tiny import tiny_model

    m = tiny_model(family)
    clean, corrupted = pair
    for block in range(m.info.n_blocks):
        heads = Patch(point="head_out", block=block, source_ids=tuple(clean))
        attn = Patch(point="attn_out", block=block, source_ids=tuple(clean))
        a = capture(m, corrupted, attention=False, interventions=[heads]).logits
        b = capture(m, corrupted, attention=False, interventions=[attn]).logits
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_batched_cells_match_single_patched_runs(model, pair, sweep):
    _, corrupted = pair
    for comp, row, col in [
        ("head_out", 0, 1),
        ("head_out", 1, 3),
        ("attn_out", 1, 2),
        ("mlp_out", 0, 4),
        ("resid", 1, 2),
    ]:
        p = _p(model, corrupted, [sweep.cell_patch(comp, row, col)], sweep.answer_id)
        assert p == pytest.approx(float(sweep.prob[comp][row, col]), rel=1e-4, abs=1e-6), comp


def test_a_cell_opens_as_a_trace_and_hooks_never_leak(model, pair, sweep):
    clean, corrupted = pair
    fresh = model.trace(ids=corrupted)
    patch = sweep.cell_patch("head_out", 1, 2)
    assert patch.heads == (2,) and patch.positions is None and patch.block == 1
    tr = model.trace(ids=corrupted, interventions=[patch])
    assert tr.interventions == [patch.model_dump(mode="json")]
    assert tr.lens.top_probs[-1, -1, 0] != fresh.lens.top_probs[-1, -1, 0]
    again = model.component_patch_sweep(clean, corrupted)
    for comp in sweep.prob:
        np.testing.assert_array_equal(again.prob[comp], sweep.prob[comp])
    after = model.trace(ids=corrupted)
    np.testing.assert_array_equal(after.lens.top_probs, fresh.lens.top_probs)


def test_skipping_the_shared_prefix_changes_no_cell(model, pair, sweep):
    full = component_patch_sweep(model, *pair, skip_shared_prefix=False)
    for comp in sweep.prob:
        np.testing.assert_allclose(full.prob[comp], sweep.prob[comp], rtol=1e-5, atol=1e-7)


def test_answer_id_and_subsets(model, pair):
    calls = []
    s = component_patch_sweep(
        model,
        *pair,
        answer_id=5,
        components=("head_out",),
        batch_size=3,
        on_progress=lambda done, total: calls.append((done, total)),
    )
    assert s.answer_id == 5 and set(s.prob) == {"head_out"}
    n = model.info.n_blocks * model.info.n_heads
    assert calls == [(min(i + 3, n), n) for i in range(0, n, 3)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, c, k: component_patch_sweep(m, c, c[:-1]), "same number of tokens"),
        (lambda m, c, k: component_patch_sweep(m, c, k, components=("x",)), "unknown components"),
        (lambda m, c, k: component_patch_sweep(m, c, k, answer_id=10**6), "outside the vocab"),
    ],
)
def test_bad_input_is_refused(model, pair, call, message):
    with pytest.raises(InputError, match=message):
        call(model, *pair)


def test_bad_cells_are_refused(sweep):
    with pytest.raises(InputError, match="unknown component"):
        sweep.cell_patch("neurons", 0, 0)
    with pytest.raises(InputError, match="outside"):
        sweep.cell_patch("head_out", 0, 99)
