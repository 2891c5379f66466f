"""``NanochatLM``: the nanochat transformer seen through layerscope's ``LensModel`` interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from layerscope.models.base import ForwardOutput, LensModel, ModelInfo
from layerscope.models.nanochat.model import NanochatTransformer, norm
from layerscope.models.nanochat.tokenizer import NanochatTokenizer


class NanochatLM(LensModel):
    """Hook points: ``blocks[l]`` (input h_l, with h_0 the normed embedding), attention ``c_proj``
    (input: merged heads) and the MLP. The KV cache is a per-layer list of (k, v) [B, Hkv, T, hd]
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
            n_layers=conf.n_layer,
            n_heads=conf.n_head,
            d_model=conf.n_embd,
            d_head=conf.head_dim,
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

    def mlp(self, layer: int) -> nn.Module:
        return self.module.transformer.h[layer].mlp

    def head_out_weight(self, layer: int) -> torch.Tensor:
        return self.module.transformer.h[layer].attn.c_proj.weight

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

    @torch.no_grad()
    def forward(
        self,
        ids: torch.Tensor,
        *,
        past: Any = None,
        output_attentions: bool = False,
        last_logits_only: bool = False,
    ) -> ForwardOutput:
        ids = ids.to(self.device)
        x, step = self.module.run_blocks(ids, past, output_attentions)
        if last_logits_only:
            x = x[:, -1:]
        logits = self.unembed(self.final_norm(x))
        return ForwardOutput(
            logits=logits,
            attentions=step.attentions if output_attentions else None,
            past=step.new_past,
        )
