"""Batched traces are the single traces, bit for bit: every array, every streamed layer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from layerscope.engine.batching import batch_is_exact, capture_batch, run_traces
from layerscope.engine.capture import capture
from layerscope.engine.trace import Trace, run_trace
from layerscope.errors import InputError
from tiny import FAMILIES, tiny_model

PROMPTS = (
    "The capital of France is Paris. The",
    "Once upon a time there was a small",
    "1 2 3 4 5 6 7 8 9 10. Hello",
    "How are you today? I am fine, thank",
)
CAPTURED = ("resid", "head_out", "attn_out", "mlp_post", "mlp_out", "attn", "logits")


def same_length_ids(model, prompts=PROMPTS, n: int | None = None) -> list[list[int]]:
    """The prompts' ids cut to one length (the shortest, or ``n``)."""
    ids = [model.tokenizer.encode(p) for p in prompts]
    n = min(len(i) for i in ids) if n is None else n
    assert all(len(i) >= n for i in ids)
    return [i[:n] for i in ids]


def recorder() -> tuple[list, object]:
    seen: list[tuple[int, dict[str, np.ndarray]]] = []
    return seen, lambda layer, arrays: seen.append((layer, arrays))


def assert_identical(got: Trace, want: Trace) -> None:
    """Every stored field and array bit for bit (NaN where NaN); timings aside."""
    assert got.ids == want.ids and got.n_prompt == want.n_prompt
    assert got.layers == want.layers and got.model_name == want.model_name
    assert got.token_text == want.token_text and got.settings == want.settings
    assert set(got.timings) == {*want.timings, "batch"}
    for name, a in want.lens.arrays().items():
        b = got.lens.arrays()[name]
        assert b.dtype == a.dtype and b.shape == a.shape, name
        assert np.array_equal(b, a, equal_nan=a.dtype.kind == "f"), name
    assert (got.capture is None) == (want.capture is None)
    if want.capture is not None:
        for name in CAPTURED:
            a, b = getattr(want.capture, name), getattr(got.capture, name)
            assert (a is None) == (b is None), name
            if a is not None:
                assert b.dtype == a.dtype and torch.equal(b, a), name
    assert json.dumps(got.to_dict()) == json.dumps(want.to_dict())


def assert_same_stream(got: list, want: list) -> None:
    assert [layer for layer, _ in got] == [layer for layer, _ in want]
    for (layer, b), (_, a) in zip(got, want, strict=True):
        assert list(b) == list(a), layer
        for name in a:
            assert b[name].dtype == a[name].dtype, (layer, name)
            assert np.array_equal(b[name], a[name], equal_nan=a[name].dtype.kind == "f"), name


def singles(model, batch, **kwargs) -> tuple[list[Trace], list[list]]:
    traces, streams = [], []
    for ids in batch:
        seen, cb = recorder()
        traces.append(run_trace(model, ids=ids, on_layer=cb, **kwargs))
        streams.append(seen)
    return traces, streams


def batched(model, batch, **kwargs) -> tuple[list[Trace], list[list]]:
    recs = [recorder() for _ in batch]
    traces = run_traces(model, batch, on_layer=[cb for _, cb in recs], **kwargs)
    return traces, [seen for seen, _ in recs]


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_traces_equal_single_traces_in_every_family(family):
    model = tiny_model(family).lens_model
    batch = same_length_ids(model, n=8)
    want, want_stream = singles(model, batch, lens_top_k=5)
    got, got_stream = batched(model, batch, lens_top_k=5)
    assert len(got) == len(batch)
    exact = batch_is_exact(model, 8, len(batch))
    for g, w, gs, ws in zip(got, want, got_stream, want_stream, strict=True):
        assert g.timings["batch"] == (len(batch) if exact else 1)
        assert_identical(g, w)
        assert_same_stream(gs, ws)


@pytest.mark.parametrize("n_tok", range(1, 10))
def test_every_length_is_exact_batched_or_not(n_tok):
    """Short prompts, where the row counts of the matrix products are the smallest: whether the
    check lets them share a pass or not, the traces are the single ones."""
    model = tiny_model("gemma2").lens_model  # softcapped, alternating sliding attention
    batch = same_length_ids(model, n=n_tok)[:3]
    want, want_stream = singles(model, batch, lens_top_k=3)
    got, got_stream = batched(model, batch, lens_top_k=3)
    for g, w, gs, ws in zip(got, want, got_stream, want_stream, strict=True):
        assert_identical(g, w)
        assert_same_stream(gs, ws)
    if batch_is_exact(model, n_tok, 3):  # then the shared pass itself is the single one
        assert got[0].timings["batch"] == 3
        for cap, ids in zip(capture_batch(model, batch), batch, strict=True):
            alone = capture(model, ids)
            assert all(torch.equal(getattr(cap, n), getattr(alone, n)) for n in CAPTURED)
    if n_tok == 1:  # a one-token prompt has no next token anywhere
        assert (got[0].lens.next_rank == -1).all() and np.isnan(got[0].lens.next_prob).all()


def test_an_inexact_batch_is_caught_and_run_prompt_by_prompt():
    """A model whose batched pass drifts in the last bits (as a matrix product may): the check
    says so, and the traces come from single passes, still equal to single runs."""
    model = tiny_model("llama").lens_model
    batch = same_length_ids(model, n=8)
    want, _ = singles(model, batch)

    def drift(module, args):  # perturbs block 0's input only when several prompts share it
        x = args[0]
        if x.shape[0] > 1:
            return (x + 1e-6 * torch.arange(x.shape[0], dtype=x.dtype)[:, None, None], *args[1:])
        return None

    handle = model.blocks[0].register_forward_pre_hook(drift)
    try:
        assert not batch_is_exact(model, 8, len(batch))
        got = run_traces(model, batch)
    finally:
        handle.remove()
    for g, w in zip(got, want, strict=True):
        assert g.timings["batch"] == 1
        assert_identical(g, w)


def test_settings_are_recorded_and_captures_dropped_like_a_single_run():
    model = tiny_model("llama").lens_model
    batch = same_length_ids(model)[:2]
    kwargs = {"chat": True, "temperature": 0.7, "top_k": 40, "seed": 3, "lens_top_k": 2}
    want, _ = singles(model, batch, attention=False, keep_capture=False, **kwargs)
    got = run_traces(model, batch, attention=False, keep_capture=False, **kwargs)
    for g, w in zip(got, want, strict=True):
        assert_identical(g, w)
        assert g.capture is None and g.model is None
    (one,) = run_traces(model, batch[:1])  # a batch of one is a single trace
    assert_identical(one, run_trace(model, ids=batch[0]))
    assert one.timings["batch"] == 1


def test_each_capture_of_a_batch_owns_its_memory():
    model = tiny_model("llama").lens_model
    a, b = capture_batch(model, same_length_ids(model, n=8)[:2])
    for name in CAPTURED:
        ta, tb = getattr(a, name), getattr(b, name)
        assert ta.is_contiguous(), name
        assert ta.untyped_storage().data_ptr() != tb.untyped_storage().data_ptr(), name
        assert ta.untyped_storage().nbytes() == ta.numel() * ta.element_size(), name


@pytest.mark.parametrize(
    ("batch", "kwargs", "words"),
    [
        ([[5, 6, 7], [5, 6]], {}, "one length"),
        ([], {}, "no prompts"),
        ([[5, 6], [5, 10**6]], {}, "out of range"),
        ([[5, 6], []], {}, "no token ids"),
        ([[5, 6]], {"lens_top_k": 0}, "top-k"),
        ([[5] * 200, [6] * 200], {}, "context"),
    ],
)
def test_bad_batches_get_a_clear_error(batch, kwargs, words):
    model = tiny_model("llama").lens_model
    with pytest.raises(InputError, match=words):
        run_traces(model, batch, **kwargs)


def test_a_raising_callback_ends_the_batch():
    model = tiny_model("llama").lens_model

    def boom(layer, arrays):
        raise RuntimeError("client gone")

    with pytest.raises(RuntimeError, match="client gone"):
        run_traces(model, same_length_ids(model)[:2], on_layer=[None, boom])
    with pytest.raises(ValueError, match="callbacks"):
        run_traces(model, same_length_ids(model)[:2], on_layer=[None])


@pytest.mark.integration
@pytest.mark.parametrize("n_tok", [5, 8])
def test_default_model_batched_equals_single(n_tok):
    import layerscope

    model = layerscope.load().lens_model
    texts = (
        "The capital of France is Paris, and the capital of",
        "Once upon a time, in a small village by the",
        "def add(a, b):\n    return a + b\n\nprint(add(",
    )
    batch = same_length_ids(model, texts, n=n_tok)
    want, want_stream = singles(model, batch)
    got, got_stream = batched(model, batch)
    print(f"\n{n_tok} tokens: shared pass {batch_is_exact(model, n_tok, 3)}")
    for g, w, gs, ws in zip(got, want, got_stream, want_stream, strict=True):
        assert_identical(g, w)
        assert_same_stream(gs, ws)
