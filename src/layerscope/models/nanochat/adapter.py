"""``NanochatLM``: the nanochat transformer seen through layerscope's ``LensModel`` interface."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from layerscope.models.base import ForwardOutput, HookSite, LensModel, ModelInfo, StopForward
from layerscope.models.nanochat.model import NanochatTransformer, norm
from layerscope.models.nanochat.tokenizer import NanochatTokenizer


class NanochatLM(LensModel):
    """Hook sites: ``blocks[l]`` (input h_l, with h_0 the normed embedding), attention (output:
    its contribution) and its ``c_proj`` (input: merged heads), the MLP (output) and its ``c_proj``
    (input: the relu² neurons). The KV cache is a per-layer list of (k, v) [B, Hkv, T, hd]
    after rotary and QK-norm; ``forward`` never mutates the cache it is given."""

    def __init__(
        self,
        module: NanochatTransformer,
        tokenizer: NanochatTokenizer,
        *,
        name: str,
        source: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        conf = module.config
        p = next(module.parameters())
        self.module = module.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.device = p.device
        self.dtype = p.dtype
        self.info = ModelInfo(
            name=name,
            family="nanochat",
            n_blocks=conf.n_layer,
            n_heads=conf.n_head,
            d_model=conf.n_embd,
            d_head=conf.head_dim,
            d_mlp=4 * conf.n_embd,
            vocab_size=conf.vocab_size,
            context_length=conf.sequence_len,
            n_params=sum(t.numel() for t in module.parameters()),
            source=source,
            extra=dict(extra or {}, n_kv_heads=conf.n_kv_head),
        )

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.module.transformer.h

    def head_out_proj(self, layer: int) -> nn.Module:
        return self.module.transformer.h[layer].attn.c_proj

    def hook_sites(self, block: int) -> dict[str, HookSite]:
        b = self.module.transformer.h[block]
        return {
            "resid_pre": HookSite(b, "input"),
            "head_out": HookSite(b.attn.c_proj, "input"),
            "attn_out": HookSite(b.attn, "output"),
            "mlp_post": HookSite(b.mlp.c_proj, "input"),
            "mlp_out": HookSite(b.mlp, "output"),
            "resid_post": HookSite(b, "output"),
        }

    def head_out_weight(self, layer: int) -> torch.Tensor:
        return self.module.transformer.h[layer].attn.c_proj.weight

    def mlp_out_weight(self, block: int) -> torch.Tensor:
        return self.module.transformer.h[block].mlp.c_proj.weight

    def embedding_module(self) -> nn.Module:
        return self.module.transformer.wte

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return norm(h)

    @property
    def unembed_weight(self) -> torch.Tensor:
        return self.module.lm_head.weight

    @property
    def logit_softcap(self) -> float | None:
        return self.module.config.softcap

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """lm_head in the model's dtype, then softcap in fp32 (logits are always float32)."""
        logits = torch.nn.functional.linear(x, self.unembed_weight).float()
        cap = self.module.config.softcap
        return torch.tanh(logits / cap) * cap

    def forward(
        self,
        ids: torch.Tensor,
        *,
        past: Any = None,
        output_attentions: bool = False,
        last_logits_only: bool = False,
        grad: bool = False,
    ) -> ForwardOutput:
        ids = ids.to(self.device)
        step = self.module.new_step(ids, past, output_attentions)
        try:
            with contextlib.nullcontext() if grad else torch.no_grad():
                x = self.module.run_blocks(ids, step)
                if last_logits_only:
                    x = x[:, -1:]
                logits = self.unembed(self.final_norm(x))
        except StopForward as stop:
            stop.past = step.new_past  # the blocks before the stop (the given cache is untouched)
            raise
        return ForwardOutput(
            logits=logits,
            attentions=step.attentions if output_attentions else None,
            past=step.new_past,
        )

    def select_cache_rows(self, past: Any, rows: torch.Tensor) -> Any:
        rows = rows.to(self.device)
        return [(k[rows], v[rows]) for k, v in past]
