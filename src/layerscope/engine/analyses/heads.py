"""Per-head logit lens of a captured pass.

The per-head lens is *direct logit attribution*: a head's output, mapped into the residual stream by
its slice of W_O, is read through the final norm with the norm's statistics frozen at the final
residual (so contributions add up) and through the unembedding row of one token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from layerscope.errors import InputError
from layerscope.models.base import LensModel


@dataclass(frozen=True)
class FrozenNorm:
    """The final norm linearised at one residual vector: ``norm(x) ≈ scale * center(x) + bias``."""

    scale: torch.Tensor  # [d] float32: gamma / sigma(x_final)
    bias: torch.Tensor  # [d] float32: the norm's additive term (zero for RMSNorm)
    centered: bool  # LayerNorm-style mean removal

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """Linear part applied to component vectors [..., d] (the bias belongs to no component)."""
        v = v.float()
        if self.centered:
            v = v - v.mean(dim=-1, keepdim=True)
        return v * self.scale


@torch.no_grad()
def freeze_final_norm(model: LensModel, x: torch.Tensor) -> FrozenNorm:
    """Linearise ``model.final_norm`` at the residual vector ``x`` [d], whatever the norm's family.

    The norm is probed, not inspected: its bias is ``norm(0)``; a ±1 vector (rms 1, mean 0)
    gives gamma; a constant vector tells whether the mean is removed; the scale at ``x`` is fitted
    by least squares so that ``scale * center(x)`` matches ``norm(x) - bias``.
    """
    d = x.shape[-1]
    dev, dt = model.device, model.dtype

    def norm(v: torch.Tensor) -> torch.Tensor:
        return model.final_norm(v.to(device=dev, dtype=dt)[None]).float()[0]

    alt = torch.ones(d, dtype=torch.float32)
    alt[1::2] = -1.0
    bias = norm(torch.zeros(d))
    gamma = (norm(alt) - bias) * alt.to(bias.device)
    const = norm(torch.full((d,), 3.0)) - bias
    centered = bool(const.abs().max() <= 1e-3 * gamma.abs().max())
    xf = x.to(bias.device).float()
    xc = xf - xf.mean() if centered else xf
    u = gamma * xc
    inv_sigma = torch.dot(norm(x) - bias, u) / torch.dot(u, u).clamp_min(1e-30)
    return FrozenNorm(scale=gamma * inv_sigma, bias=bias, centered=centered)


#: vocabulary columns per slice of the heads x vocabulary product (reads W_U once in all)
VOCAB_SLICE = 8192


def _top_tokens(
    rows: torch.Tensor, w_u: torch.Tensor, k: int, between: Callable[[], None] | None
) -> torch.Tensor:
    """Ids of the ``k`` largest logits of each row of ``rows @ w_u.T`` [n, V], one vocabulary
    slice at a time (the top k of each slice, then of those), ``between()`` after each slice."""
    k = min(k, w_u.shape[0])
    values, ids = [], []
    for start in range(0, w_u.shape[0], VOCAB_SLICE):
        part = rows @ w_u[start : start + VOCAB_SLICE].T
        best = torch.topk(part, k=min(k, part.shape[1]), dim=-1)
        values.append(best.values)
        ids.append(best.indices + start)
        if between is not None:
            between()
    values_all, ids_all = torch.cat(values, dim=1), torch.cat(ids, dim=1)
    return torch.gather(ids_all, 1, torch.topk(values_all, k=k, dim=-1).indices)


@dataclass(frozen=True)
class HeadLens:
    """Each head's direct contribution to one token's logit at one position."""

    position: int
    target_id: int
    contrib: np.ndarray  # float32 [L, H]: logit units
    top_ids: np.ndarray  # int32 [L, H, k]: tokens each head's output pushes up most


@torch.no_grad()
def head_logit_lens(
    model: LensModel,
    resid: torch.Tensor,
    head_out: torch.Tensor,
    position: int,
    target_id: int,
    k: int = 5,
    between: Callable[[], None] | None = None,
) -> HeadLens:
    """Direct logit attribution of every head at ``position`` to ``target_id``.

    ``resid`` is the captured residual [L+1, T, d]; ``head_out`` the per-head outputs
    [L, T, H, d_head] before W_O. The contribution of head h in layer l is
    ``W_U[target] · frozen_norm(W_O[:, h] z_{l,h})``. ``top_ids`` holds the ``k`` tokens each
    head's output pushes up most (``k=0``: none, and the answer costs a fraction);
    ``between()`` is called after each block's share of that product (a server's checkpoint).
    """
    n_blocks, n_pos, n_heads, d_head = head_out.shape
    if not 0 <= position < n_pos:
        raise InputError(f"position {position} is outside the trace (0..{n_pos - 1})")
    if not 0 <= target_id < model.unembed_weight.shape[0]:
        raise InputError(f"token id {target_id} is outside the vocabulary")
    frozen = freeze_final_norm(model, resid[-1, position])
    dev = frozen.scale.device
    outs = []
    for block in range(n_blocks):
        w_o = model.head_out_weight(block).to(dev).float()  # [d, H*d_head]
        w_o = w_o.view(w_o.shape[0], n_heads, d_head)
        z = head_out[block, position].to(dev).float()  # [H, d_head]
        outs.append(torch.einsum("dhk,hk->hd", w_o, z))
    read = frozen(torch.stack(outs))  # [L, H, d]
    w_u = model.unembed_weight.to(dev).float()
    contrib = read @ w_u[target_id]
    if k == 0:  # contributions only: skips the [L*H, V] product, the costly part
        top = torch.empty((n_blocks, n_heads, 0), dtype=torch.int64)
    else:
        top = _top_tokens(read.reshape(-1, read.shape[-1]), w_u, k, between)
        top = top.reshape(n_blocks, n_heads, -1)
    return HeadLens(
        position=position,
        target_id=int(target_id),
        contrib=contrib.cpu().numpy().astype(np.float32),
        top_ids=top.cpu().numpy().astype(np.int32),
    )
