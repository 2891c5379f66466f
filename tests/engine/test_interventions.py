"""Interventions as data: validated, serialisable, composable edits through the one installer."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError

from layerscope.engine.capture import capture
from layerscope.engine.interventions import (
    Ablate,
    Patch,
    Steer,
    bind,
    hooks_for,
    intervention_list,
    resid_site,
)
from layerscope.engine.trace import run_trace
from layerscope.errors import InputError
from tiny import tiny_hf_model, tiny_model

PROMPT = "The capital of France is Paris."


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def ids(model):
    return model.tokenizer.encode(PROMPT)


def unit(d: int, i: int = 0) -> tuple[float, ...]:
    return tuple(1.0 if j == i else 0.0 for j in range(d))


def test_json_round_trip_and_discriminated_kinds(model):
    items = [
        Patch(point="resid_post", block=0, positions=(2,), source_ids=(1, 2, 3)),
        Ablate(point="head_out", block=1, heads=(0, 3), mode="mean"),
        Steer(point="resid_pre", block=1, vector=unit(model.info.d_model), strength=2.5),
    ]
    data = intervention_list.dump_python(items, mode="json")
    assert [d["kind"] for d in data] == ["patch", "ablate", "steer"]
    assert intervention_list.validate_python(data) == items
    assert items[1].describe() == "ablate head_out[1] heads 0,3 (mean)"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: Ablate(point="resid_post", block=9), "block 9"),
        (lambda d: Ablate(point="head_out", block=0, heads=(7,)), "head 7"),
        (lambda d: Steer(point="mlp_post", block=0, vector=unit(d)), "needs 128 numbers"),
        (lambda d: Patch(point="attn_out", block=0, positions=(5,), source_ids=(1, 2)), "past"),
    ],
)
def test_what_does_not_fit_the_model_is_a_clear_error(model, make, words):
    with pytest.raises(InputError, match=words):
        bind(model, [make(model.info.d_model)])


def test_malformed_interventions_are_refused_by_the_schema():
    with pytest.raises(ValidationError, match="heads can only"):
        Ablate(point="resid_post", block=0, heads=(1,))
    with pytest.raises(ValidationError):
        intervention_list.validate_python([{"kind": "steer", "point": "nowhere", "block": 0}])
    with pytest.raises(ValidationError):
        Ablate(point="resid_post", block=-1)


def test_steering_adds_the_vector_and_two_steers_compose(model, ids):
    d = model.info.d_model
    base = capture(model, ids, attention=False)
    one = Steer(point="resid_post", block=0, vector=unit(d, 5), strength=2.0)
    steered = capture(model, ids, attention=False, interventions=[one])
    torch.testing.assert_close(
        steered.resid[1] - base.resid[1], 2.0 * torch.eye(d)[5].expand(len(ids), d)
    )
    both = capture(model, ids, attention=False, interventions=[one, one.model_copy()])
    torch.testing.assert_close(
        both.resid[1] - base.resid[1], 4.0 * torch.eye(d)[5].expand(len(ids), d)
    )


def test_ablation_zero_and_mean_at_chosen_heads_and_positions(model, ids):
    zero = Ablate(point="head_out", block=0, heads=(1,), positions=(2, 3))
    cap = capture(model, ids, attention=False, interventions=[zero])
    assert cap.head_out[0, 2:4, 1].abs().max() == 0
    assert cap.head_out[0, 4:, 1].abs().max() > 0 and cap.head_out[0, 2:4, 0].abs().max() > 0
    base = capture(model, ids, attention=False)
    mean = capture(
        model, ids, attention=False, interventions=[Ablate(point="mlp_out", block=1, mode="mean")]
    )
    want = base.mlp_out[1].mean(dim=0).expand_as(base.mlp_out[1])
    torch.testing.assert_close(mean.mlp_out[1], want)


def test_a_patch_copies_the_sources_value(model, ids):
    source = [(i + 11) % model.info.vocab_size for i in ids]
    point, block = resid_site(2)
    patch = Patch(point=point, block=block, positions=(1, 4), source_ids=tuple(source))
    src = capture(model, source, attention=False)
    cap = capture(model, ids, attention=False, interventions=[patch])
    torch.testing.assert_close(cap.resid[2, [1, 4]], src.resid[2, [1, 4]])
    plain = capture(model, ids, attention=False)
    torch.testing.assert_close(cap.resid[2, [0, 2, 3]], plain.resid[2, [0, 2, 3]])


def test_interventions_act_during_generation_and_are_kept_in_the_trace(model, ids):
    d = model.info.d_model
    first_new = len(ids)  # the first generated position only
    steer = Steer(
        point="resid_post", block=0, vector=unit(d, 0), strength=50.0, positions=(first_new,)
    )
    tr = run_trace(model, ids=ids, generate=3, attention=False, interventions=[steer])
    assert tr.interventions == [steer.model_dump(mode="json")]
    # KV-cached generation with the steer = one pass over the same tokens with the steer
    again = capture(model, tr.ids, attention=False, interventions=[steer])
    torch.testing.assert_close(tr.capture.resid, again.resid, atol=1e-4, rtol=1e-4)
    plain = capture(model, tr.ids, attention=False)
    moved = (again.resid[1] - plain.resid[1]).abs().amax(dim=1)
    assert moved[first_new] == pytest.approx(50.0, rel=1e-4)
    assert moved[:first_new].max() == 0 and moved[first_new + 1 :].max() == 0


def test_per_row_interventions_edit_only_their_row(model, ids):
    d = model.info.d_model
    rows = [[], [Steer(point="resid_post", block=1, vector=unit(d, 3), strength=1.0)]]
    hooks = hooks_for(bind(model, per_row=rows), record=[("resid_post", 1)])
    with torch.no_grad(), hooks.installed():
        model.forward(torch.tensor([ids, ids]))
    h = hooks.values("resid_post", 1)
    torch.testing.assert_close(h[1] - h[0], torch.eye(d)[3].expand(len(ids), d), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- component ablations and steering
def lens_logits(model, ids, interventions=()):
    """Logits at every position [T, V] with ``interventions`` applied."""
    hooks = hooks_for(bind(model, interventions))
    with torch.inference_mode(), hooks.installed():
        return model.forward(torch.tensor([ids])).logits[0].float()


def test_every_form_round_trips_through_json(model):
    d = model.info.d_model
    items = [
        Ablate(heads=[(0, 1), (1, 3)]),
        Ablate(attn=[0], mlps=[1], mode="mean"),
        Ablate(layers=[1], mode="mean", reference_ids=(5, 6, 7)),
        Ablate(heads=[(1, 0)], positions=(0, 2)),
        Ablate(point="mlp_post", block=0, mode="mean"),
        Steer(layer=1, vector=unit(d), strength=-3.5),
        Steer(layer=0, vector=[unit(d, 1), unit(d, 2)], strength=2.0),
        Steer(layer=2, vector=unit(d), strength=4.0, where="generated"),
        Steer(point="head_out", block=1, heads=(2,), vector=unit(model.info.d_head)),
        Patch(point="head_out", block=0, heads=(1,), source_ids=(1, 2, 3)),
    ]
    data = intervention_list.dump_python(items, mode="json")
    back = intervention_list.validate_json(json.dumps(data))
    assert back == items
    assert data[0]["heads"] == [[0, 1], [1, 3]] and data[0]["attn"] == []
    assert data[6]["where"] == "aligned"  # the default for a 2-D vector
    contract = {
        "kind": "ablate",
        "heads": [[3, 4], [5, 1]],
        "attn": [],
        "mlps": [7],
        "layers": [],
        "mode": "zero",
        "reference_ids": None,
        "positions": None,
    }
    assert intervention_list.validate_python([contract])[0].edits() == [
        ("head_out", 3, (4,)),
        ("head_out", 5, (1,)),
        ("mlp_out", 7, None),
    ]
    steer = {"kind": "steer", "layer": 3, "vector": [0.5] * d, "strength": 2, "where": "all"}
    assert intervention_list.validate_python([steer])[0].strength == 2.0
    assert Ablate(heads=[(0, 1)], layers=[1]).describe() == "ablate heads 0.1; block 1 (zero)"


def test_component_ablations_expand_into_hook_point_edits(model):
    iv = Ablate(heads=[(1, 2), (0, 3), (1, 0), (1, 2)], attn=[1], mlps=[0], layers=[1])
    assert iv.edits(model) == [
        ("head_out", 0, (3,)),
        ("head_out", 1, (0, 2)),
        ("attn_out", 1, None),
        ("mlp_out", 0, None),
        ("mlp_out", 1, None),
    ]


def test_zeroing_a_head_zeroes_its_slice_before_w_o(model, ids):
    cap = capture(model, ids, attention=False, interventions=[Ablate(heads=[(1, 2)])])
    base = capture(model, ids, attention=False)
    assert cap.head_out[1, :, 2].abs().max() == 0
    torch.testing.assert_close(cap.head_out[1, :, [0, 1, 3]], base.head_out[1, :, [0, 1, 3]])
    torch.testing.assert_close(cap.resid[:2], base.resid[:2])  # nothing before block 1 moves
    assert (cap.resid[2] - base.resid[2]).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("family", "mode"),
    [("llama", "zero"), ("llama", "mean"), ("gpt2", "mean"), ("gpt_neox", "mean")],
)
def test_every_head_of_a_block_equals_its_attention_layer(family, mode):
    # zero: W_O(0) = 0 only without an output bias (llama); mean: W_O is linear, so
    # mean(W_O h + b) = W_O mean(h) + b in every family whose attn_out is W_O h + b
    m = tiny_model(family)
    ids = m.tokenizer.encode(PROMPT)
    n = m.info.n_heads
    heads = lens_logits(m, ids, [Ablate(heads=[(1, h) for h in range(n)], mode=mode)])
    attn = lens_logits(m, ids, [Ablate(attn=[1], mode=mode)])
    torch.testing.assert_close(heads, attn, atol=1e-4, rtol=1e-4)
    assert (attn - lens_logits(m, ids)).abs().max() > 1e-2


class _Skip(torch.nn.Module):
    """A block that passes the residual stream through (the reference for a removed block)."""

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__()
        for name in ("attention_type", "layer_idx", "is_sliding"):
            if hasattr(block, name):
                setattr(self, name, getattr(block, name))

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2", "gpt_neox"])
@pytest.mark.parametrize("block", [0, 1])
def test_ablating_a_block_equals_running_without_it(family, block):
    m = tiny_model(family)
    ids = m.tokenizer.encode(PROMPT)
    ablated = lens_logits(m, ids, [Ablate(layers=[block])])
    reference = tiny_hf_model(family)  # the same weights (same seed), block replaced
    n_blocks = m.info.n_blocks
    (holder,) = [
        mod
        for mod in reference.modules()
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_blocks
    ]
    holder[block] = _Skip(holder[block])
    with torch.inference_mode():
        want = reference(input_ids=torch.tensor([ids])).logits[0].float()
    torch.testing.assert_close(ablated, want, atol=1e-4, rtol=1e-4)
    assert (want - lens_logits(m, ids)).abs().max() > 1e-2


def test_mean_ablation_over_a_reference_text(model, ids):
    ref = model.tokenizer.encode("Once upon a time there was a small model.")
    iv = Ablate(mlps=[0], mode="mean", reference_ids=tuple(ref))
    cap = capture(model, ids, attention=False, interventions=[iv])
    want = capture(model, ref, attention=False).mlp_out[0].mean(dim=0)
    torch.testing.assert_close(cap.mlp_out[0], want.expand(len(ids), -1))
    prompt_mean = capture(model, ids, attention=False).mlp_out[0].mean(dim=0)
    assert (want - prompt_mean).abs().max() > 1e-3  # a different mean than the prompt's
    heads = Ablate(heads=[(1, 1)], mode="mean", reference_ids=tuple(ref))
    cap = capture(model, ids, attention=False, interventions=[heads])
    want = capture(model, ref, attention=False).head_out[1, :, 1].mean(dim=0)
    torch.testing.assert_close(cap.head_out[1, :, 1], want.expand(len(ids), -1))


def test_mean_ablation_during_generation_reuses_the_prompts_mean(model, ids):
    tr = run_trace(
        model, ids=ids, generate=3, attention=False, interventions=[Ablate(attn=[1], mode="mean")]
    )
    plain = capture(model, ids, attention=False)  # the prompt's pass is unedited up to attn 1
    want = plain.attn_out[1].mean(dim=0)
    torch.testing.assert_close(tr.capture.attn_out[1], want.expand(len(tr.ids), -1))
    # the mean is taken at the prompt's positions even when only later ones are replaced
    late = Ablate(attn=[1], mode="mean", positions=(len(ids),))
    tr = run_trace(model, ids=ids, generate=2, attention=False, interventions=[late])
    torch.testing.assert_close(tr.capture.attn_out[1, len(ids)], want)


def test_steering_with_strength_zero_changes_nothing(model, ids):
    d = model.info.d_model
    plain = run_trace(model, ids=ids, generate=4, attention=True)
    for where, vector in (("all", unit(d)), ("aligned", [unit(d)] * 3), ("generated", unit(d))):
        steer = Steer(layer=1, vector=vector, strength=0.0, where=where)
        assert bind(model, [steer]).sites == set()  # nothing is even hooked
        tr = run_trace(model, ids=ids, generate=4, attention=True, interventions=[steer])
        assert tr.ids == plain.ids
        assert torch.equal(tr.capture.resid, plain.capture.resid)
        assert torch.equal(tr.capture.attn, plain.capture.attn)
        a, b = tr.to_dict(), plain.to_dict()
        a["settings"].pop("interventions")
        b["settings"].pop("interventions")
        a.pop("timings", None)
        b.pop("timings", None)
        assert a == b


def test_steer_at_a_layer_adds_to_that_lens_layer(model, ids):
    d = model.info.d_model
    base = capture(model, ids, attention=False)
    for layer in (0, 1, 2):
        cap = capture(
            model,
            ids,
            attention=False,
            interventions=[Steer(layer=layer, vector=unit(d, 4), strength=3.0)],
        )
        torch.testing.assert_close(
            cap.resid[layer] - base.resid[layer], 3.0 * torch.eye(d)[4].expand(len(ids), d)
        )
        torch.testing.assert_close(cap.resid[:layer], base.resid[:layer])


def test_aligned_and_generated_steering_touch_their_positions(model, ids):
    d = model.info.d_model
    rows = [unit(d, 0), unit(d, 1)]
    aligned = Steer(layer=1, vector=rows, strength=5.0)
    tr = run_trace(model, ids=ids, generate=3, attention=False, interventions=[aligned])
    # KV-cached generation with the steer = one pass over the same tokens with the steer
    again = capture(model, tr.ids, attention=False, interventions=[aligned])
    torch.testing.assert_close(tr.capture.resid, again.resid, atol=1e-4, rtol=1e-4)
    plain = capture(model, tr.ids, attention=False)
    moved = again.resid[1] - plain.resid[1]
    torch.testing.assert_close(moved[:2], 5.0 * torch.eye(d)[:2])
    assert moved[2:].abs().max() == 0
    gen = Steer(layer=1, vector=unit(d, 7), strength=5.0, where="generated")
    tr = run_trace(model, ids=ids, generate=3, attention=False, interventions=[gen])
    first = len(ids) - 1  # the prompt's last position predicts the first new token
    # = one pass over the same tokens with the vector added from ``first`` on
    same = gen.model_copy(update={"where": "all", "positions": tuple(range(first, len(tr.ids)))})
    again = capture(model, tr.ids, attention=False, interventions=[same])
    torch.testing.assert_close(tr.capture.resid, again.resid, atol=1e-4, rtol=1e-4)
    plain = capture(model, tr.ids, attention=False)
    moved = (again.resid[1] - plain.resid[1]).abs().amax(dim=1)
    assert moved[:first].max() == 0
    torch.testing.assert_close(moved[first:], torch.full((len(tr.ids) - first,), 5.0))
    assert tr.ids != run_trace(model, ids=ids, generate=3, attention=False).ids


def test_experiments_are_deterministic_and_leave_nothing_behind(model, ids):
    d = model.info.d_model
    fresh = run_trace(model, ids=ids, generate=3, attention=True).to_dict()
    fresh.pop("timings", None)
    experiments = [
        [Ablate(heads=[(0, 1), (1, 2)])],
        [Ablate(layers=[0], mode="mean")],
        [Ablate(mlps=[1], mode="mean", reference_ids=(3, 4, 5))],
        [Steer(layer=1, vector=unit(d, 2), strength=8.0)],
        [Steer(layer=2, vector=[unit(d, 2)] * 2, strength=-4.0)],
    ]
    for ivs in experiments:
        one = run_trace(model, ids=ids, generate=3, interventions=ivs).to_dict()
        two = run_trace(model, ids=ids, generate=3, interventions=ivs).to_dict()
        one.pop("timings", None)
        two.pop("timings", None)
        assert one == two
        after = run_trace(model, ids=ids, generate=3, attention=True).to_dict()
        after.pop("timings", None)
        assert after == fresh


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: Ablate(heads=[(2, 0)]), "block 2"),
        (lambda d: Ablate(heads=[(1, 4)]), "head 4"),
        (lambda d: Ablate(mlps=[5]), "block 5"),
        (lambda d: Ablate(layers=[0, 1]), "every attention layer and every MLP"),
        (lambda d: Ablate(attn=[0, 1], mlps=[0, 1], mode="mean"), "nothing but the embedding"),
        (lambda d: Ablate(mlps=[0], mode="mean", reference_ids=(999,)), "vocabulary"),
        (lambda d: Steer(layer=3, vector=unit(d)), "lens layers 0..2"),
        (lambda d: Steer(layer=1, vector=unit(d + 1)), "needs 64 numbers"),
    ],
)
def test_component_forms_that_do_not_fit_are_clear_errors(model, make, words):
    with pytest.raises(InputError, match=words):
        bind(model, [make(model.info.d_model)])


def test_everything_split_over_several_ablations_is_refused(model):
    heads = [(b, h) for b in range(2) for h in range(4)]
    with pytest.raises(InputError, match="every attention layer"):
        bind(model, [Ablate(heads=heads), Ablate(mlps=[0]), Ablate(mlps=[1])])
    bind(model, [Ablate(heads=heads[:-1]), Ablate(mlps=[0, 1])])  # one head left: fine


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "switches off nothing"),
        ({"heads": []}, "at least 1"),
        ({"heads": [1, 2]}, "pairs"),
        ({"point": "attn_out"}, "both point and block"),
        ({"point": "attn_out", "block": 0, "mlps": [1]}, "not both"),
        ({"attn": [0], "reference_ids": [1]}, "mode='mean'"),
        ({"attn": [-1]}, "greater than or equal"),
    ],
)
def test_malformed_ablations_are_refused(kwargs, words):
    with pytest.raises(ValidationError, match=words):
        Ablate(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"strength": float("nan")}, "finite"),
        ({"strength": float("inf")}, "finite"),
        ({"vector": [1.0, float("nan")]}, "finite"),
        ({"vector": [[1.0], [2.0]], "where": "all"}, "aligned"),
        ({"vector": [[1.0], [2.0, 3.0]]}, "same length"),
        ({"where": "generated", "positions": [1]}, "positions"),
        ({"point": "resid_pre", "block": 0}, "not both"),
        ({"layer": None}, "either layer"),
    ],
)
def test_malformed_steers_are_refused(kwargs, words):
    with pytest.raises(ValidationError, match=words):
        Steer(**{"layer": 1, "vector": [1.0, 2.0], **kwargs})
