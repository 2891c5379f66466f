"""The chunked lens equals a plain full-vocabulary computation of the same definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.engine.capture import capture
from layerscope.engine.lens import Lens, compute_lens
from tiny import tiny_model

PROMPT = "The capital of France is Paris. The capital of Italy is"


def reference(model, resid, ids, k):
    """Straightforward statistics from the full [L+1, T, V] log-probabilities."""
    with torch.inference_mode():
        logits = model.unembed(model.final_norm(resid)).double()
    logp = torch.log_softmax(logits, -1)
    p = logp.exp()
    final_id = logits[-1].argmax(-1)  # [T]
    top_vals, top_ids = logits.topk(k, -1)
    z_final = logits.gather(-1, final_id.expand(logits.shape[0], -1)[..., None])
    nxt = torch.tensor([*ids[1:], 0])
    z_next = logits.gather(-1, nxt.expand(logits.shape[0], -1)[..., None])
    next_rank = (logits > z_next).sum(-1) + 1
    next_rank[:, -1] = -1
    return {
        "top_ids": top_ids.numpy(),
        "top_probs": top_vals.sub(torch.logsumexp(logits, -1, keepdim=True)).exp().numpy(),
        "final_rank": ((logits > z_final).sum(-1) + 1).numpy(),
        "final_prob": p.gather(-1, final_id.expand(logits.shape[0], -1)[..., None])[..., 0].numpy(),
        "next_rank": next_rank.numpy(),
        "entropy": -(p * logp).sum(-1).numpy(),
        "kl_final": (p[-1] * (logp[-1] - logp)).sum(-1).numpy(),
    }


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2"])  # plain, softcapped, GPT-2
@pytest.mark.parametrize("chunk_rows", [7, 256])
def test_lens_matches_reference(family, chunk_rows):
    model = tiny_model(family)
    ids = model.tokenizer.encode(PROMPT)
    cap = capture(model, ids, attention=False)
    lens = compute_lens(model, cap.resid, ids, k=5, chunk_rows=chunk_rows)
    ref = reference(model, cap.resid, ids, 5)
    np.testing.assert_array_equal(lens.top_ids, ref["top_ids"])
    np.testing.assert_array_equal(lens.final_rank, ref["final_rank"])
    np.testing.assert_array_equal(lens.next_rank, ref["next_rank"])
    for key in ("top_probs", "final_prob", "entropy", "kl_final"):
        np.testing.assert_allclose(getattr(lens, key), ref[key], atol=2e-5, err_msg=key)
    assert np.isnan(lens.next_prob[:, -1]).all() and not np.isnan(lens.next_prob[:, :-1]).any()
    assert (lens.final_rank[-1] == 1).all() and (lens.kl_final[-1] == 0).all()


def test_unembedding_bias_is_included():
    model = tiny_model("llama")
    with torch.no_grad():
        model.hf.lm_head.bias = torch.nn.Parameter(torch.randn(model.info.vocab_size))
    ids = model.tokenizer.encode(PROMPT)
    cap = capture(model, ids, attention=False)
    lens = compute_lens(model, cap.resid, ids, k=3, chunk_rows=16)
    ref = reference(model, cap.resid, ids, 3)
    np.testing.assert_array_equal(lens.top_ids, ref["top_ids"])
    np.testing.assert_allclose(lens.kl_final, ref["kl_final"], atol=2e-5)


def test_layers_are_streamed_final_first_and_all_once():
    model = tiny_model("qwen2")
    ids = model.tokenizer.encode(PROMPT)
    cap = capture(model, ids, attention=False)
    seen = []
    lens = compute_lens(
        model, cap.resid, ids, k=4, chunk_rows=5, on_layer=lambda i, a: seen.append((i, a))
    )
    n = model.info.n_blocks
    assert [layer for layer, _ in seen] == [n, *range(n)]
    for layer, arrays in seen:
        for key, value in lens.layer(layer).items():
            np.testing.assert_array_equal(arrays[key], value, err_msg=key)


def test_lock_in_is_the_start_of_the_final_top1_run():
    rank = np.array([[1, 3, 1], [2, 1, 1], [1, 1, 4], [1, 1, 1]]).astype(np.int32)
    shape = rank.shape
    zeros = np.zeros(shape, np.float32)
    lens = Lens(
        top_ids=np.zeros((*shape, 1), np.int32),
        top_probs=np.zeros((*shape, 1), np.float32),
        final_rank=rank,
        final_prob=zeros,
        next_rank=rank,
        next_prob=zeros,
        entropy=zeros,
        kl_final=zeros,
    )
    assert lens.lock_in().tolist() == [2, 1, 3]
