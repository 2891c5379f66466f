"""Head-role scores: hand-built patterns, set weights, and an independent TL-style reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from layerscope.engine.analyses.attention import (
    THRESHOLDS,
    head_roles,
    head_stats,
    induction_probe,
    probe_ids,
)
from layerscope.engine.capture import capture
from layerscope.errors import InputError


def _one(pattern: torch.Tensor) -> torch.Tensor:
    """A single head's [T, T] pattern as [1, 1, T, T]."""
    return pattern[None, None]


def tl_scores(a: np.ndarray, ids: list[int]) -> dict[str, float]:
    """TransformerLens ``detect_head`` ("mul", default options), written out cell by cell."""
    n = len(ids)
    prev = np.zeros((n, n))
    dup = np.zeros((n, n))
    for i in range(n):
        if i > 0:
            prev[i, i - 1] = 1
        for j in range(i):
            if ids[i] == ids[j]:
                dup[i, j] = 1
    ind = np.zeros((n, n))
    for i in range(n):
        for j in range(n - 1):
            ind[i, j + 1] = dup[i, j]
    first = np.zeros((n, n))
    first[:, 0] = 1
    pats = {"previous_token": prev, "duplicate_token": dup, "induction": ind, "first_token": first}
    return {name: float((a * p).sum() / a.sum()) for name, p in pats.items()}


def test_previous_token_head_scores_all_it_can():
    n = 9
    a = torch.zeros(n, n)
    a[0, 0] = 1.0  # the first query has nothing before it
    a[torch.arange(1, n), torch.arange(n - 1)] = 1.0
    s = head_stats(_one(a), list(range(n)))
    assert s["previous_token"][0, 0] == pytest.approx((n - 1) / n)
    assert s["first_token"][0, 0] == pytest.approx(2 / n)  # rows 0 and 1 look at position 0
    assert s["entropy"][0, 0] == pytest.approx(0.0, abs=1e-6)
    # without the unavoidable first row, the score is exactly 1
    b = a.clone()
    b[0, 0] = 0.0
    assert head_stats(_one(b), list(range(n)))["previous_token"][0, 0] == pytest.approx(1.0)


def test_uniform_head_has_maximal_entropy():
    n = 7
    a = torch.tril(torch.ones(n, n))
    a = a / a.sum(dim=-1, keepdim=True)
    s = head_stats(_one(a), list(range(n)))
    expected = float(np.mean([math.log(i + 1) for i in range(n)]))
    assert s["entropy"][0, 0] == pytest.approx(expected, rel=1e-5)
    # any other row distribution has less entropy
    peaked = a.clone()
    peaked[n - 1] = torch.tensor([0.4, *[0.6 / (n - 1)] * (n - 1)])
    assert head_stats(_one(peaked), list(range(n)))["entropy"][0, 0] < expected


def test_hand_built_induction_pattern_is_detected():
    bos, x = 0, [5, 9, 3, 7, 11]
    ids = [bos, *x, *x]
    n, half = len(ids), len(x)
    a = torch.zeros(n, n)
    for i in range(1 + half, n):  # second copy: attend to the token after the earlier copy
        a[i, i - half + 1] = 1.0
    s = head_stats(_one(a), ids)
    assert s["induction"][0, 0] == pytest.approx(1.0)
    assert s["duplicate_token"][0, 0] == pytest.approx(0.0)
    # a real (row-normalised) head: the first copy's rows rest on BOS
    a[: 1 + half, 0] = 1.0
    s = head_stats(_one(a), ids)
    assert s["induction"][0, 0] == pytest.approx(half / n)
    assert s["first_token"][0, 0] == pytest.approx((1 + half) / n)
    assert s["induction"][0, 0] == pytest.approx(tl_scores(a.numpy(), ids)["induction"])


def test_bos_head_scores_one_on_first_token():
    n = 6
    a = torch.zeros(n, n)
    a[:, 0] = 1.0
    s = head_stats(_one(a), [1, 2, 3, 1, 2, 3])
    assert s["first_token"][0, 0] == pytest.approx(1.0)
    assert s["previous_token"][0, 0] == pytest.approx(1 / n)  # row 1's previous token is BOS
    assert head_roles(s)["first_token"] == [(0, 0)]


def test_zero_queries_make_every_head_uniform():
    """Set weights: with W_Q = 0 every score is 0, so every causal row is uniform."""
    from tiny import tiny_model

    m = tiny_model("llama", seed=3)
    with torch.no_grad():
        m.lens_model.hf.model.layers[0].self_attn.q_proj.weight.zero_()
    ids = m.tokenizer.encode("The capital of France is Paris.")
    s = head_stats(capture(m, ids).attn, ids)
    expected = float(np.mean([math.log(i + 1) for i in range(len(ids))]))
    np.testing.assert_allclose(s["entropy"][0], expected, rtol=1e-5)
    assert s["entropy"][1].max() < expected  # the untouched block is not uniform


def test_scores_match_an_independent_tl_implementation(model):
    text = "the cat sat on the mat and the cat sat on the mat"
    ids = model.tokenizer.encode(text)
    assert len(set(ids)) < len(ids)  # repeats: duplicate and induction cells exist
    attn = capture(model, ids).attn
    s = head_stats(attn, ids)
    for b in range(attn.shape[0]):
        for h in range(attn.shape[1]):
            ref = tl_scores(attn[b, h].double().numpy(), ids)
            for name, value in ref.items():
                assert s[name][b, h] == pytest.approx(value, rel=1e-4, abs=1e-6), (name, b, h)
    assert set(s) >= {"previous_token", "duplicate_token", "induction", "first_token", "entropy"}
    assert all(v.shape == attn.shape[:2] and v.dtype == np.float32 for v in s.values())


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2", "gpt2", "gpt_neox"])
def test_attention_rows_sum_to_one(family):
    from tiny import tiny_model

    m = tiny_model(family)
    attn = capture(m, m.tokenizer.encode("Hello world! How are you today?")).attn
    torch.testing.assert_close(attn.sum(dim=-1), torch.ones(attn.shape[:-1]), rtol=0, atol=1e-5)
    assert torch.all(attn.triu(1) == 0)  # causal


def test_head_roles_use_the_thresholds():
    stats = {name: np.zeros((2, 3), dtype=np.float32) for name in THRESHOLDS}
    stats["induction"][1, 2] = THRESHOLDS["induction"]
    stats["induction"][0, 1] = THRESHOLDS["induction"] - 0.01
    roles = head_roles(stats)
    assert roles["induction"] == [(1, 2)]
    assert roles["previous_token"] == []


def test_trace_attention_is_bertviz_format(model):
    trace = model.trace("The capital of France is Paris.")
    att = trace.attention
    n_blocks, n_heads = model.info.n_blocks, model.info.n_heads
    t = len(trace.ids)
    assert isinstance(att, tuple) and len(att) == n_blocks
    assert all(a.shape == (1, n_heads, t, t) for a in att)
    torch.testing.assert_close(torch.cat(att), trace.capture.attn)
    np.testing.assert_array_equal(
        trace.head_stats()["induction"], head_stats(trace.capture.attn, trace.ids)["induction"]
    )
    with pytest.raises(InputError):
        _ = model.trace("Hello", attention=False).attention


def test_saved_trace_keeps_its_attention(model, tmp_path):
    trace = model.trace("Hello world, hello world")
    loaded = type(trace).load(trace.save(tmp_path / "t.lstrace.json", attention=True))
    torch.testing.assert_close(torch.cat(loaded.attention), trace.capture.attn, atol=1e-3, rtol=0)


def test_induction_probe_runs_a_seeded_repeat(model):
    probe = induction_probe(model, n_tokens=12, seed=1)
    ids = probe.ids
    bos = model.tokenizer.bos_id
    body = ids[1:] if bos is not None else ids
    assert len(body) == 24 and body[:12] == body[12:]
    assert probe_ids(model, 12, seed=1) == ids and probe_ids(model, 12, seed=2) != ids
    assert len(probe.top) == min(10, model.info.n_blocks * model.info.n_heads)
    scores = [s for _, _, s in probe.top]
    assert scores == sorted(scores, reverse=True)
    b, h, s = probe.top[0]
    assert (
        s == pytest.approx(float(probe.stats["induction"].max())) == probe.stats["induction"][b, h]
    )
