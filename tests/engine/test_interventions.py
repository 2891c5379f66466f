"""Interventions as data: validated, serialisable, composable edits through the one installer."""

from __future__ import annotations

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
from tiny import tiny_model

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
        Steer(point="resid_pre", block=1, vector=unit(model.info.d_model), scale=2.5),
    ]
    data = intervention_list.dump_python(items, mode="json")
    assert [d["kind"] for d in data] == ["patch", "ablate", "steer"]
    assert intervention_list.validate_python(data) == items
    assert items[1].describe() == "ablate head_out[1] heads 0,3"


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
    one = Steer(point="resid_post", block=0, vector=unit(d, 5), scale=2.0)
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
        point="resid_post", block=0, vector=unit(d, 0), scale=50.0, positions=(first_new,)
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
    rows = [[], [Steer(point="resid_post", block=1, vector=unit(d, 3), scale=1.0)]]
    hooks = hooks_for(bind(model, per_row=rows), record=[("resid_post", 1)])
    with torch.no_grad(), hooks.installed():
        model.forward(torch.tensor([ids, ids]))
    h = hooks.values("resid_post", 1)
    torch.testing.assert_close(h[1] - h[0], torch.eye(d)[3].expand(len(ids), d), atol=1e-5, rtol=0)
