"""``attention_layer``: one block's attention at one position: each head's pattern, output norm,
direct logit contribution and role scores (the Components view's attention panel)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.engine.analyses.components import attention_layer as compute_attention_layer
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
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


@request(AttentionLayerRequest, answers=AttentionLayerFrame, lane="interactive")
def attention_layer(ctx: RequestContext, msg: AttentionLayerRequest) -> AttentionLayerFrame:
    trace = ctx.stored_trace(msg.trace_id)
    target = trace.answer_id(msg.position, msg.target_id)
    a = compute_attention_layer(ctx.model, trace.capture, msg.block, msg.position, target)
    stats = trace.head_stats()
    return AttentionLayerFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        block=msg.block,
        position=msg.position,
        target_id=int(a.target_id),
        pattern=rounded(a.pattern, 5),
        out_norm=rounded(a.out_norm),
        dla=rounded(a.dla),
        roles={name: rounded(v[msg.block]) for name, v in stats.items()},
        vocab=ctx.vocab([int(a.target_id)]),
    )
