"""The nanochat GPT as an nn.Module, written from the facts in nanochat-format.md.

Every block is called as a module (``block(x, step)``) with the residual stream as its first
positional argument, the attention output projection ``c_proj`` gets the merged heads as its
input and the MLP is a module, so forward hooks see (and may replace) exactly those tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from layerscope.models.nanochat.config import NanochatConfig


def norm(x: torch.Tensor) -> torch.Tensor:
    """Parameter-free RMSNorm over the last dimension (default eps)."""
    return F.rms_norm(x, (x.size(-1),))


def rotary_tables(
    length: int, head_dim: int, base: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [length, head_dim/2]: computed in fp32, rounded to bf16 as nanochat stores them."""
    j = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device)
    inv_freq = 1.0 / (base ** (j / head_dim))
    t = torch.arange(length, dtype=torch.float32, device=device)
    freqs = torch.outer(t, inv_freq)
    return freqs.cos().bfloat16(), freqs.sin().bfloat16()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, T, H, hd] with nanochat's sign: y1 = x1 cos + x2 sin, y2 = -x1 sin + x2 cos."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos = cos[None, :, None, :].to(x.dtype)
    sin = sin[None, :, None, :].to(x.dtype)
    return torch.cat([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], dim=-1)


@dataclass
class StepState:
    """Per-call context passed to every block: positions, cache in, cache and attentions out."""

    cos: torch.Tensor  # [T_new, hd/2] for the new positions
    sin: torch.Tensor
    past: list[tuple[torch.Tensor, torch.Tensor]] | None  # per layer (k, v) [B, Hkv, T_past, hd]
    output_attentions: bool
    new_past: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    attentions: list[torch.Tensor] = field(default_factory=list)


class CausalSelfAttention(nn.Module):
    def __init__(self, conf: NanochatConfig, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_head, self.n_kv_head, self.head_dim = conf.n_head, conf.n_kv_head, conf.head_dim
        d = conf.n_embd
        self.c_q = nn.Linear(d, conf.n_head * conf.head_dim, bias=False)
        self.c_k = nn.Linear(d, conf.n_kv_head * conf.head_dim, bias=False)
        self.c_v = nn.Linear(d, conf.n_kv_head * conf.head_dim, bias=False)
        self.c_proj = nn.Linear(conf.n_head * conf.head_dim, d, bias=False)

    def forward(self, x: torch.Tensor, step: StepState) -> torch.Tensor:
        B, T, _ = x.shape
        hd = self.head_dim
        q = self.c_q(x).view(B, T, self.n_head, hd)
        k = self.c_k(x).view(B, T, self.n_kv_head, hd)
        v = self.c_v(x).view(B, T, self.n_kv_head, hd)
        q, k = apply_rotary(q, step.cos, step.sin), apply_rotary(k, step.cos, step.sin)
        q, k = norm(q), norm(k)  # QK-norm after rotary
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, hd]
        if step.past is not None:
            pk, pv = step.past[self.layer]
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
        step.new_past.append((k, v))
        offset = k.size(2) - T
        groups = self.n_head // self.n_kv_head
        if groups > 1:  # GQA: kv head j serves query heads j*groups .. (j+1)*groups - 1
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        if step.output_attentions:
            scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(hd)
            scores = scores.masked_fill(~causal_mask(T, offset, x.device), float("-inf"))
            probs = scores.softmax(dim=-1)
            step.attentions.append(probs)
            y = probs.to(v.dtype) @ v
        else:
            mask = None if offset == 0 or T == 1 else causal_mask(T, offset, x.device)
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=offset == 0 and T > 1
            )
        y = y.transpose(1, 2).reshape(B, T, self.n_head * hd)  # merge heads, head-major
        return self.c_proj(y)


def causal_mask(t_new: int, offset: int, device: torch.device) -> torch.Tensor:
    """[T_new, offset + T_new] bool: query i (position offset + i) may see keys 0..offset + i."""
    q_pos = torch.arange(t_new, device=device)[:, None] + offset
    k_pos = torch.arange(offset + t_new, device=device)[None, :]
    return k_pos <= q_pos


class MLP(nn.Module):
    def __init__(self, conf: NanochatConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(conf.n_embd, 4 * conf.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * conf.n_embd, conf.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, conf: NanochatConfig, layer: int) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(conf, layer)
        self.mlp = MLP(conf)

    def forward(self, x: torch.Tensor, step: StepState) -> torch.Tensor:
        x = x + self.attn(norm(x), step)
        return x + self.mlp(norm(x))


class NanochatTransformer(nn.Module):
    """wte -> norm -> blocks -> norm -> lm_head -> softcap. State-dict keys match nanochat's."""

    def __init__(self, conf: NanochatConfig) -> None:
        super().__init__()
        self.config = conf
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(conf.vocab_size, conf.n_embd),
                "h": nn.ModuleList(Block(conf, i) for i in range(conf.n_layer)),
            }
        )
        self.lm_head = nn.Linear(conf.n_embd, conf.vocab_size, bias=False)
        self._rotary: tuple[torch.Tensor, torch.Tensor] | None = None

    def rotary(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """bf16-rounded cos/sin for positions [0, length), grown on demand."""
        cached = self._rotary
        if cached is None or cached[0].size(0) < length or cached[0].device != device:
            size = max(length, self.config.sequence_len)
            cached = rotary_tables(size, self.config.head_dim, self.config.rotary_base, device)
            self._rotary = cached
        return cached[0][:length], cached[1][:length]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """h_0: the normed token embedding (what enters block 0)."""
        return norm(self.transformer.wte(ids))

    def new_step(
        self,
        ids: torch.Tensor,
        past: list[tuple[torch.Tensor, torch.Tensor]] | None,
        output_attentions: bool,
    ) -> StepState:
        """The per-call state for ids [B, T_new] continuing ``past``."""
        offset = 0 if not past else past[0][0].size(2)
        cos, sin = self.rotary(offset + ids.size(1), ids.device)
        return StepState(cos[offset:], sin[offset:], past or None, output_attentions)

    def run_blocks(self, ids: torch.Tensor, step: StepState) -> torch.Tensor:
        """Residual stream after the last block for ids [B, T_new] (``step`` from new_step)."""
        x = self.embed(ids)
        for block in self.transformer.h:
            x = block(x, step)
        return x
