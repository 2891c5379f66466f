"""nanochat through the engine: lens, generation with the KV cache, determinism, chat stops."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from layerscope.engine.lens import layer_logits
from layerscope.engine.trace import run_trace
from layerscope.models.nanochat import load_nanochat

PROMPT = "The quick brown fox jumps"


def test_lens_final_layer_equals_logits(tiny_model: Any) -> None:
    trace = tiny_model.trace(PROMPT)
    L = tiny_model.info.n_blocks
    assert trace.n_lens_layers == L + 1 and trace.layers[-1] == f"h_{L}"
    logits = tiny_model.forward(torch.tensor([trace.ids]), output_attentions=True).logits[0]
    assert torch.equal(layer_logits(tiny_model, trace.capture.resid, L), logits)
    # the capture unembeds only the last position (for sampling): same values up to BLAS rounding
    torch.testing.assert_close(trace.capture.logits, logits[-1], atol=1e-5, rtol=1e-6)
    assert trace.tokens_at(L) == logits.argmax(-1).tolist()
    probs = logits.softmax(-1).max(-1).values.numpy()
    assert abs(trace.lens.top_probs[L, :, 0] - probs).max() < 1e-5
    h0 = trace.capture.resid[0]
    wte = tiny_model.module.transformer.wte.weight[trace.ids]
    torch.testing.assert_close(h0, torch.nn.functional.rms_norm(wte, (wte.size(-1),)))


def test_per_head_outputs_rebuild_attention(tiny_model: Any) -> None:
    cap = tiny_model.trace(PROMPT).capture
    for layer in range(tiny_model.info.n_blocks):
        attn_out = cap.resid[layer + 1] - cap.resid[layer] - cap.mlp_out[layer]
        heads = cap.head_out[layer].flatten(1)  # [T, H*dh]
        rebuilt = heads @ tiny_model.head_out_weight(layer).T
        torch.testing.assert_close(rebuilt, attn_out, atol=1e-5, rtol=1e-5)
    assert cap.attn is not None and cap.attn.shape[:2] == (2, 4)


def test_generation_with_cache_equals_recomputation(tiny_model: Any) -> None:
    gen = tiny_model.trace(PROMPT, generate=6)
    assert len(gen.ids) == gen.n_prompt + 6
    again = tiny_model.trace(ids=gen.ids)
    torch.testing.assert_close(gen.capture.resid, again.capture.resid, atol=5e-5, rtol=1e-5)
    torch.testing.assert_close(gen.capture.attn, again.capture.attn, atol=1e-5, rtol=1e-4)
    assert (gen.lens.top_ids[:, :, 0] == again.lens.top_ids[:, :, 0]).mean() > 0.99


def test_trace_is_deterministic(tiny_model: Any) -> None:
    kw = {"generate": 8, "temperature": 0.9, "top_k": 50, "seed": 42}
    a = json.dumps(tiny_model.trace(PROMPT, **kw).to_dict())
    b = json.dumps(tiny_model.trace(PROMPT, **kw).to_dict())
    assert a == b
    assert json.dumps(tiny_model.trace(PROMPT).to_dict()) == json.dumps(
        tiny_model.trace(PROMPT).to_dict()
    )


def _always_assistant_end(sd: dict[str, torch.Tensor]) -> None:
    """Every stream points along the all-ones direction, and only <|assistant_end|> reads it."""
    d = sd["transformer.wte.weight"].shape[1]
    g = torch.Generator().manual_seed(1)
    sd["transformer.wte.weight"] = (1 + 0.1 * torch.randn(300, d, generator=g)).bfloat16()
    for k in sd:
        if k.endswith("c_proj.weight"):
            sd[k] = torch.zeros_like(sd[k])
    head = torch.zeros(300, d)
    head[295] = 1.0  # <|assistant_end|> is the 5th of the 9 special tokens at ids 291..299
    sd["lm_head.weight"] = head


def test_chat_trace_stops_at_assistant_end(make_checkpoint: Callable[..., Path]) -> None:
    model = load_nanochat(make_checkpoint(edit_state=_always_assistant_end), device="cpu")
    end = model.tokenizer.special["<|assistant_end|>"]
    assert end == 295
    trace = run_trace(model, "Hello, world!", chat=True, generate=10)
    msgs = [{"role": "user", "content": "Hello, world!"}]
    assert trace.ids[: trace.n_prompt] == model.tokenizer.encode_chat(msgs)
    assert trace.ids[trace.n_prompt :] == [end]
    assert trace.to_dict()["token_text"][str(end)] == "<|assistant_end|>"


def test_gradients_and_cache_rows(tiny_model) -> None:
    lm = tiny_model.lens_model
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = lm.forward(ids)
    past = lm.select_cache_rows(out.past, torch.tensor([1, 1]))
    got = lm.forward(torch.tensor([[7], [7]]), past=past).logits[:, -1]
    ref = lm.forward(torch.tensor([[4, 5, 6, 7]])).logits[0, -1]
    torch.testing.assert_close(got[0], ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[1], ref, atol=1e-4, rtol=1e-4)
    assert not out.logits.requires_grad
    emb = lm.module.transformer.wte
    emb.weight.requires_grad_(True)
    try:
        lm.forward(ids[:1], grad=True).logits[0, -1].max().backward()
        assert emb.weight.grad is not None and emb.weight.grad.abs().sum() > 0
    finally:
        emb.weight.requires_grad_(False)
        emb.weight.grad = None


def test_cached_early_exit_on_nanochat(tiny_model) -> None:
    from layerscope.engine.capture import capture
    from layerscope.engine.decoding.early_exit import early_exit_generate

    ids = tiny_model.tokenizer.encode(PROMPT)
    seq, ref = list(ids), []
    for _ in range(4):  # the slow way: the whole sequence again, read at h_1
        h = capture(tiny_model, seq, attention=False).resid[1, -1]
        tok = int(tiny_model.unembed(tiny_model.final_norm(h[None]))[0].argmax())
        ref.append(tok)
        seq.append(tok)
    assert early_exit_generate(tiny_model, ids, 1, 4) == ref
