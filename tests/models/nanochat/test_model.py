"""The nanochat forward pass against an independent re-statement of nanochat-format.md."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from layerscope.models.nanochat.adapter import NanochatLM
from layerscope.models.nanochat.config import NanochatConfig
from layerscope.models.nanochat.load import build_module


def reference_logits(
    sd: dict[str, torch.Tensor],
    cfg: dict[str, int],
    ids: list[int],
    rotary_sign: float = 1.0,
    norm_first: bool = False,
    round_tables: bool = True,
) -> torch.Tensor:
    """The doc's math with plain tensor ops on one sequence; returns softcapped logits [T, V]."""
    W = {k: v.float() for k, v in sd.items()}
    H, Hkv, d = cfg["n_head"], cfg["n_kv_head"], cfg["n_embd"]
    hd = d // H
    T = len(ids)

    def rms(x: torch.Tensor) -> torch.Tensor:
        eps = torch.finfo(x.dtype).eps
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)

    inv = torch.tensor([10000.0 ** (-2 * j / hd) for j in range(hd // 2)], dtype=torch.float32)
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    if round_tables:
        cos, sin = cos.bfloat16().float(), sin.bfloat16().float()

    def qk(x: torch.Tensor) -> torch.Tensor:
        return rot(rms(x)) if norm_first else rms(rot(x))

    def rot(x: torch.Tensor) -> torch.Tensor:  # x [T, hd]
        x1, x2 = x[:, : hd // 2], x[:, hd // 2 :]
        s = rotary_sign * sin
        return torch.cat([x1 * cos + x2 * s, -x1 * s + x2 * cos], dim=1)

    x = rms(W["transformer.wte.weight"][ids])
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        a = rms(x)
        q = a @ W[p + "attn.c_q.weight"].T
        k = a @ W[p + "attn.c_k.weight"].T
        v = a @ W[p + "attn.c_v.weight"].T
        heads = []
        for h in range(H):
            kv = h // (H // Hkv)
            qh = qk(q[:, h * hd : (h + 1) * hd])
            kh = qk(k[:, kv * hd : (kv + 1) * hd])
            vh = v[:, kv * hd : (kv + 1) * hd]
            s = qh @ kh.T / math.sqrt(hd)
            s = s + torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
            heads.append(torch.softmax(s, dim=-1) @ vh)
        x = x + torch.cat(heads, dim=1) @ W[p + "attn.c_proj.weight"].T
        m = rms(x) @ W[p + "mlp.c_fc.weight"].T
        x = x + (torch.relu(m) ** 2) @ W[p + "mlp.c_proj.weight"].T
    logits = rms(x) @ W["lm_head.weight"].T
    return 15.0 * torch.tanh(logits / 15.0)


def make_model(
    helpers: Any,
    tokenizer: Any,
    cfg: dict[str, int],
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> tuple[NanochatLM, dict[str, torch.Tensor]]:
    sd = helpers.random_state_dict(cfg, seed)
    module = build_module(NanochatConfig(**cfg), sd, torch.device("cpu"), dtype)
    return NanochatLM(module, tokenizer, name="tiny"), sd


IDS = [299 - 9 + 0, 17, 104, 32, 250, 33, 7, 120, 121, 122, 45, 200]


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_forward_matches_reference(helpers: Any, tiny_model: NanochatLM, kv_heads: int) -> None:
    cfg = helpers.model_config(tiny_model.info.vocab_size, n_kv_head=kv_heads)
    model, sd = make_model(helpers, tiny_model.tokenizer, cfg)
    got = model.forward(torch.tensor([IDS])).logits[0]
    ref = reference_logits(sd, cfg, IDS)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "variant", [{"rotary_sign": -1.0}, {"norm_first": True}, {"round_tables": False}]
)
def test_reference_check_has_power(
    helpers: Any, tiny_model: NanochatLM, variant: dict[str, Any]
) -> None:
    """Each detail (rotary sign, QK-norm after rotary, bf16 tables) moves logits past the
    tolerance of test_forward_matches_reference, so that test pins all three."""
    cfg = helpers.model_config(tiny_model.info.vocab_size)
    model, sd = make_model(helpers, tiny_model.tokenizer, cfg)
    got = model.forward(torch.tensor([IDS])).logits[0]
    diff = (reference_logits(sd, cfg, IDS, **variant) - got).abs().max()
    assert diff > 1e-3


def test_block0_input_is_normed_embedding(tiny_model: NanochatLM) -> None:
    seen: list[torch.Tensor] = []
    hook = tiny_model.blocks[0].register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    try:
        tiny_model.forward(torch.tensor([IDS]))
    finally:
        hook.remove()
    wte = tiny_model.module.transformer.wte.weight[IDS]
    torch.testing.assert_close(seen[0][0], torch.nn.functional.rms_norm(wte, (wte.size(-1),)))


def test_lens_at_last_block_equals_logits(tiny_model: NanochatLM) -> None:
    outs: list[torch.Tensor] = []
    hook = tiny_model.blocks[-1].register_forward_hook(lambda m, a, o: outs.append(o))
    try:
        logits = tiny_model.forward(torch.tensor([IDS])).logits
    finally:
        hook.remove()
    lens = tiny_model.unembed(tiny_model.final_norm(outs[0]))
    assert torch.equal(lens, logits)
    assert logits.dtype == torch.float32 and logits.abs().max() < 15.0


@pytest.mark.parametrize("attn", [False, True])
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_kv_cache_matches_full_sequence(
    helpers: Any, tiny_model: NanochatLM, attn: bool, kv_heads: int
) -> None:
    model, _ = make_model(
        helpers, tiny_model.tokenizer, helpers.model_config(300, n_kv_head=kv_heads), seed=3
    )
    ids = torch.tensor([IDS, IDS[::-1]])
    full = model.forward(ids, output_attentions=attn)
    out = model.forward(ids[:, :5], output_attentions=attn)  # prefill
    pieces = [out.logits]
    past = out.past
    for t in range(5, 9):  # one token at a time
        out = model.forward(ids[:, t : t + 1], past=past, output_attentions=attn)
        pieces.append(out.logits)
        past = out.past
    out = model.forward(ids[:, 9:], past=past, output_attentions=attn)  # a chunk after a cache
    pieces.append(out.logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full.logits, atol=5e-5, rtol=1e-5)
    if attn:
        torch.testing.assert_close(
            out.attentions[1], full.attentions[1][:, :, 9:], atol=1e-6, rtol=1e-5
        )


def test_cache_not_mutated(tiny_model: NanochatLM) -> None:
    first = tiny_model.forward(torch.tensor([IDS[:4]]))
    a = tiny_model.forward(torch.tensor([[5]]), past=first.past).logits
    b = tiny_model.forward(torch.tensor([[5]]), past=first.past).logits
    assert torch.equal(a, b)
    assert first.past[0][0].shape[2] == 4


def test_attention_probs_causal_and_normalised(tiny_model: NanochatLM) -> None:
    out = tiny_model.forward(torch.tensor([IDS]), output_attentions=True)
    T = len(IDS)
    assert len(out.attentions) == tiny_model.info.n_blocks
    for a in out.attentions:
        assert a.shape == (1, tiny_model.info.n_heads, T, T)
        torch.testing.assert_close(a.sum(-1), torch.ones(1, 4, T))
        assert torch.all(torch.triu(a, diagonal=1) == 0)
    sdpa = tiny_model.forward(torch.tensor([IDS]))
    assert sdpa.attentions is None
    torch.testing.assert_close(sdpa.logits, out.logits, atol=1e-5, rtol=1e-5)
    step = tiny_model.forward(torch.tensor([[9, 10]]), past=out.past, output_attentions=True)
    a = step.attentions[0]
    assert a.shape == (1, 4, 2, T + 2)
    assert torch.all(a[:, :, 0, T + 1] == 0) and torch.all(a[:, :, 1, T + 1] > 0)


def test_head_out_proj_sees_merged_heads_and_interventions_apply(tiny_model: NanochatLM) -> None:
    proj = tiny_model.head_out_proj(1)
    seen: list[torch.Tensor] = []
    h1 = proj.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    base = tiny_model.forward(torch.tensor([IDS])).logits
    h1.remove()
    assert seen[0].shape == (1, len(IDS), 4 * 16)
    assert tiny_model.head_out_weight(1).shape == (64, 64)

    # zero head 2 of layer 1 through a replacing pre-hook: the output changes accordingly
    def ablate(m: Any, a: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x = a[0].clone()
        x[..., 32:48] = 0
        return (x,)

    h2 = proj.register_forward_pre_hook(ablate)
    try:
        ablated = tiny_model.forward(torch.tensor([IDS])).logits
    finally:
        h2.remove()
    assert not torch.allclose(ablated, base)
    assert torch.equal(tiny_model.forward(torch.tensor([IDS])).logits, base)


def test_bf16_runs_with_float_logits(helpers: Any, tiny_model: NanochatLM) -> None:
    model, _ = make_model(
        helpers, tiny_model.tokenizer, helpers.model_config(300), dtype=torch.bfloat16
    )
    ref, _ = make_model(helpers, tiny_model.tokenizer, helpers.model_config(300))
    out = model.forward(torch.tensor([IDS]), output_attentions=True)
    assert out.logits.dtype == torch.float32
    want = ref.forward(torch.tensor([IDS])).logits
    assert (out.logits - want).abs().mean() < 0.3
