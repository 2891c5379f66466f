"""``attention_layer``: one block's attention at one position: each head's pattern, output norm,
direct logit contribution and role scores (the Components view's attention panel)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from layerscope.engine.analyses.attention import head_stats
from layerscope.engine.analyses.components import attention_layer as compute_attention_layer
from layerscope.errors import InputError
from layerscope.server.context import RequestContext
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request, Vocab


class AttentionLayerRequest(Request):
    """One block's heads at one position of a stored trace: patterns, output norms, logit push."""

    type: Literal["attention_layer"] = "attention_layer"
    trace_id: str
    block: int = Field(ge=0)
    position: int = Field(ge=0)
    target_id: int | None = Field(None, ge=0)  # default: the final layer's top prediction


class AttentionLayerFrame(Frame):
    """Each head of ``block``: where ``position`` attends, its output's norm, its direct
    contribution to ``target_id``'s logit, and its role scores on this prompt."""

    type: Literal["attention_layer"] = "attention_layer"
    req: int
    trace_id: str
    block: int
    position: int
    target_id: int
    pattern: list[list[float]]  # [head][key position]: the attention row of ``position``
    out_norm: list[float]  # [head]
    dla: list[float]  # [head], logit units
    roles: dict[str, list[float]]  # score name -> [head] (previous_token, induction, entropy, …)
    vocab: Vocab


def check_block(ctx: RequestContext, block: int) -> None:
    n = ctx.model.info.n_blocks
    if not 0 <= block < n:
        raise InputError(f"block {block} is outside 0..{n - 1}")


def default_target(trace, position: int, target_id: int | None) -> int:
    return int(trace.lens.top_ids[-1, position, 0]) if target_id is None else target_id


@request(AttentionLayerRequest, answers=AttentionLayerFrame)
def attention_layer(ctx: RequestContext, msg: AttentionLayerRequest) -> AttentionLayerFrame:
    trace = ctx.stored_trace(msg.trace_id)
    trace.check_cell(None, msg.position)
    check_block(ctx, msg.block)
    cap = trace.capture
    if cap.attn is None:
        raise InputError("this trace kept no attention patterns")
    target = default_target(trace, msg.position, msg.target_id)
    a = compute_attention_layer(ctx.model, cap, msg.block, msg.position, target)
    stats = head_stats(cap.attn, [int(i) for i in cap.ids])
    r = lambda x, d=4: np.round(np.asarray(x, dtype=np.float64), d).tolist()  # noqa: E731
    return AttentionLayerFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        block=msg.block,
        position=msg.position,
        target_id=int(a.target_id),
        pattern=r(a.pattern, 5),
        out_norm=r(a.out_norm),
        dla=r(a.dla),
        roles={name: r(v[msg.block]) for name, v in stats.items()},
        vocab=ctx.vocab([int(a.target_id)]),
    )
