"""One sub-layer up close: an attention layer's heads, an MLP's strongest neurons.

Direct logit contributions go through the final norm frozen at ``h_L`` of the position
(:func:`~layerscope.engine.analyses.heads.freeze_final_norm`) and the target's unembedding row,
so they are in the same (pre-softcap) logit units as :mod:`~layerscope.engine.analyses.dataflow`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from layerscope.engine.analyses.heads import FrozenNorm, freeze_final_norm
from layerscope.engine.capture import Capture
from layerscope.errors import InputError
from layerscope.models.base import LensModel


def _check(model: LensModel, cap: Capture, block: int, position: int) -> None:
    if not 0 <= block < cap.attn_out.shape[0]:
        raise InputError(f"block {block} is outside 0..{cap.attn_out.shape[0] - 1}")
    if not 0 <= position < cap.n_tokens:
        raise InputError(f"position {position} is outside the trace (0..{cap.n_tokens - 1})")


def _target(model: LensModel, cap: Capture, position: int, target_id: int | None) -> int:
    """``target_id``, or the model's top token at ``position``; checked against the vocabulary."""
    if target_id is None:
        h = cap.resid[-1, position][None]
        return int(model.unembed(model.final_norm(h))[0].argmax())
    if not 0 <= target_id < model.unembed_weight.shape[0]:
        raise InputError(f"token id {target_id} is outside the vocabulary")
    return int(target_id)


def _reader(model: LensModel, cap: Capture, position: int) -> tuple[FrozenNorm, torch.Tensor]:
    """The frozen final norm at ``position`` and the unembedding [V, d] on its device."""
    frozen = freeze_final_norm(model, cap.resid[-1, position])
    return frozen, model.unembed_weight.to(frozen.scale.device).float()


@dataclass(frozen=True)
class AttentionLayer:
    """Every head of one attention layer at one query position."""

    block: int
    position: int
    target_id: int
    pattern: np.ndarray  # float32 [H, T]: each head's attention row at the position
    out_norm: np.ndarray  # float32 [H]: norm of each head's output through its slice of W_O
    dla: np.ndarray  # float32 [H]: each head's direct contribution to the target's logit


@torch.no_grad()
def attention_layer(
    model: LensModel, cap: Capture, block: int, position: int, target_id: int | None = None
) -> AttentionLayer:
    """The heads of ``block`` at query ``position``: patterns, output norms, logit contributions."""
    _check(model, cap, block, position)
    if cap.attn is None:
        raise InputError("this capture kept no attention patterns; capture with attention=True")
    target = _target(model, cap, position, target_id)
    frozen, w_u = _reader(model, cap, position)
    dev = w_u.device
    _, _, n_heads, d_head = cap.head_out.shape
    w_o = model.head_out_weight(block).to(dev).float().view(-1, n_heads, d_head)
    z = cap.head_out[block, position].to(dev).float()  # [H, d_head]
    outs = torch.einsum("dhk,hk->hd", w_o, z)  # [H, d]
    return AttentionLayer(
        block=block,
        position=position,
        target_id=target,
        pattern=cap.attn[block, :, position].float().cpu().numpy().astype(np.float32),
        out_norm=outs.norm(dim=-1).cpu().numpy().astype(np.float32),
        dla=(frozen(outs) @ w_u[target]).cpu().numpy().astype(np.float32),
    )


@dataclass(frozen=True)
class Neurons:
    """One MLP's most active neurons at one position."""

    block: int
    position: int
    target_id: int
    neurons: np.ndarray  # int64 [k]: neuron indices, largest activation first
    acts: np.ndarray  # float32 [k]: their activations (mlp_post)
    dla: np.ndarray  # float32 [k]: act * W_out[:, n] read through the frozen norm · W_U[target]
    promoted: np.ndarray  # int64 [k, n_tokens]: tokens W_out[:, n] pushes up most
    suppressed: np.ndarray  # int64 [k, n_tokens]: tokens W_out[:, n] pushes down most


@torch.no_grad()
def top_neurons(
    model: LensModel,
    cap: Capture,
    block: int,
    position: int,
    target_id: int | None = None,
    k: int = 10,
    n_tokens: int = 5,
) -> Neurons:
    """The ``k`` neurons of ``block``'s MLP with the largest activation at ``position``.

    Each neuron's output direction ``W_out[:, n]`` is read through the frozen final norm and the
    unembedding: the tokens it promotes and suppresses most (per unit of activation), and its
    direct contribution ``act * W_out[:, n]`` to the target's logit.
    """
    _check(model, cap, block, position)
    target = _target(model, cap, position, target_id)
    frozen, w_u = _reader(model, cap, position)
    dev = w_u.device
    acts = cap.mlp_post[block, position].to(dev).float()  # [d_mlp]
    top = torch.topk(acts, k=min(k, acts.shape[0]))
    w_out = model.mlp_out_weight(block).to(dev).float()[:, top.indices]  # [d, k]
    read = frozen(w_out.T)  # [k, d]
    token_logits = read @ w_u.T  # [k, V]
    n = min(n_tokens, w_u.shape[0])
    return Neurons(
        block=block,
        position=position,
        target_id=target,
        neurons=top.indices.cpu().numpy().astype(np.int64),
        acts=top.values.cpu().numpy().astype(np.float32),
        dla=(top.values * (read @ w_u[target])).cpu().numpy().astype(np.float32),
        promoted=torch.topk(token_logits, n, dim=-1).indices.cpu().numpy().astype(np.int64),
        suppressed=torch.topk(-token_logits, n, dim=-1).indices.cpu().numpy().astype(np.int64),
    )
