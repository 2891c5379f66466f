"""The data flow sub-layer by sub-layer: the residual stream after every attention and MLP.

The sub-layer lens reads 2L + 1 stops, ``h_0, mid_0, h_1, mid_1, ..., h_L``, where ``mid_b`` is
``resid_mid`` of block b (the stream after attention, before the MLP). The pipeline of one
position puts real numbers on every stage: the stream's norm, each addition's norm, its cosine
with the stream it is added to, its direct contribution to one token's logit (through the final
norm frozen at ``h_L``, as :mod:`~layerscope.engine.analyses.heads` does for heads) and the lens
read at every stop.

In parallel-residual families (GPT-NeoX) the MLP reads ``resid_pre``, not ``mid_b``; the stops
are the same sums (``mid_b = resid_pre + attn_out``, ``h_{b+1} = mid_b + mlp_out``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from layerscope.engine.analyses.heads import freeze_final_norm
from layerscope.engine.capture import Capture
from layerscope.engine.lens import Lens, compute_lens
from layerscope.errors import InputError
from layerscope.models.base import LensModel


def sublayer_labels(n_blocks: int) -> list[str]:
    """Names of the 2L + 1 stops: ``h_0, b0·attn, h_1, b1·attn, ..., h_L``."""
    out = ["h_0"]
    for b in range(n_blocks):
        out += [f"b{b}·attn", f"h_{b + 1}"]
    return out


def stage_labels(n_blocks: int) -> list[str]:
    """Names of the pipeline's stages: ``embed, b0·attn, b0·mlp, ..., final norm``."""
    out = ["embed"]
    for b in range(n_blocks):
        out += [f"b{b}·attn", f"b{b}·mlp"]
    return [*out, "final norm"]


def sublayer_stack(cap: Capture) -> torch.Tensor:
    """[2L + 1, T, d]: h_0, mid_0, h_1, mid_1, ..., h_L."""
    mid = cap.resid_mid
    rows = [cap.resid[0]]
    for b in range(mid.shape[0]):
        rows += [mid[b], cap.resid[b + 1]]
    return torch.stack(rows)


def additions(cap: Capture) -> torch.Tensor:
    """[2L, T, d]: attn_out[0], mlp_out[0], attn_out[1], ... (what each sub-layer adds)."""
    rows = []
    for b in range(cap.attn_out.shape[0]):
        rows += [cap.attn_out[b], cap.mlp_out[b]]
    return torch.stack(rows)


def sublayer_lens(model: LensModel, cap: Capture, k: int = 5) -> Lens:
    """The logit lens over the 2L + 1 sub-layer stops (:func:`sublayer_stack`); its last stop
    is the model's own output."""
    return compute_lens(model, sublayer_stack(cap), cap.ids, k=k)


@dataclass(frozen=True)
class Pipeline:
    """One position's path through the model, with numbers at every stage.

    Streams are indexed like :func:`sublayer_labels` (2L + 1), additions like the pipeline's
    sub-layer stages (2L: b0·attn, b0·mlp, ...). Logit contributions are in pre-softcap logit
    units and add up: ``embed_dla + dla.sum() + bias_dla`` is the target's pre-softcap logit.
    """

    position: int
    target_id: int
    stages: list[str]  # "embed", "b0·attn", "b0·mlp", ..., "final norm" (2L + 2)
    stops: list[str]  # the 2L + 1 streams: h_0, b0·attn, h_1, ...
    resid_norm: np.ndarray  # float32 [2L+1]: the stream's norm after each stage
    add_norm: np.ndarray  # float32 [2L]: norm of each sub-layer's addition
    add_cos: np.ndarray  # float32 [2L]: cosine of the addition with the stream it joins
    dla: np.ndarray  # float32 [2L]: each addition's direct contribution to the target logit
    embed_dla: float  # h_0's direct contribution
    bias_dla: float  # the final norm's bias (and unembedding bias) term: belongs to no stage
    target_logit: float  # the target's final logit (softcap applied, as the model outputs it)
    lens_top_ids: np.ndarray  # int32 [2L+1, 5]
    lens_top_probs: np.ndarray  # float32 [2L+1, 5]
    lens_target_prob: np.ndarray  # float32 [2L+1]


def _check(cap: Capture, position: int) -> None:
    if not 0 <= position < cap.n_tokens:
        raise InputError(f"position {position} is outside the trace (0..{cap.n_tokens - 1})")


@torch.no_grad()
def pipeline(
    model: LensModel, cap: Capture, position: int, target_id: int | None = None
) -> Pipeline:
    """The data flow at ``position`` towards ``target_id`` (default: the model's top token)."""
    _check(cap, position)
    n_blocks = cap.attn_out.shape[0]
    streams = sublayer_stack(cap)[:, position].float()  # [2L+1, d]
    adds = additions(cap)[:, position].float()  # [2L, d]
    logits = model.unembed(model.final_norm(streams.to(model.dtype))).float()  # [2L+1, V]
    target = int(logits[-1].argmax()) if target_id is None else int(target_id)
    if not 0 <= target < logits.shape[-1]:
        raise InputError(f"token id {target} is outside the vocabulary")
    probs = torch.softmax(logits, dim=-1)
    top = torch.topk(probs, k=min(5, probs.shape[-1]), dim=-1)
    frozen = freeze_final_norm(model, cap.resid[-1, position])
    dev = frozen.scale.device
    w_u = model.unembed_weight[target].to(dev).float()
    u_bias = model.unembed_bias
    bias_dla = float(frozen.bias @ w_u) + (float(u_bias[target]) if u_bias is not None else 0.0)
    before = streams[:-1].to(dev)
    adds = adds.to(dev)
    cos = torch.nn.functional.cosine_similarity(adds, before, dim=-1)
    return Pipeline(
        position=position,
        target_id=target,
        stages=stage_labels(n_blocks),
        stops=sublayer_labels(n_blocks),
        resid_norm=streams.norm(dim=-1).cpu().numpy().astype(np.float32),
        add_norm=adds.norm(dim=-1).cpu().numpy().astype(np.float32),
        add_cos=cos.cpu().numpy().astype(np.float32),
        dla=(frozen(adds) @ w_u).cpu().numpy().astype(np.float32),
        embed_dla=float(frozen(streams[0].to(dev)) @ w_u),
        bias_dla=bias_dla,
        target_logit=float(logits[-1, target]),
        lens_top_ids=top.indices.cpu().numpy().astype(np.int32),
        lens_top_probs=top.values.cpu().numpy().astype(np.float32),
        lens_target_prob=probs[:, target].cpu().numpy().astype(np.float32),
    )
