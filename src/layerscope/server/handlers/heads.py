"""``heads``: each head's direct contribution to one token's logit at one position."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from layerscope.engine.analyses.heads import head_logit_lens
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import Lane, request
from layerscope.server.schemas import Frame, Request, Vocab


class HeadsRequest(Request):
    """Per-head direct logit contributions at one position of a stored trace (and the `k` tokens
    each head pushes up most; `k` = 0 skips them and answers in a fraction of the time)."""

    type: Literal["heads"] = "heads"
    trace_id: str
    position: int = Field(ge=0)
    target_id: int | None = Field(None, ge=0)  # default: the final layer's top prediction
    k: int = Field(5, ge=0, le=20)  # 0: contributions only (fast), top_ids empty


class HeadsFrame(Frame):
    """Direct logit contribution of each head (blocks x heads) to ``target_id`` at ``position``."""

    type: Literal["heads"] = "heads"
    req: int
    trace_id: str
    position: int
    target_id: int
    contrib: list[list[float]]  # [block][head], logit units
    top_ids: list[list[list[int]]]  # [block][head][k] tokens each head pushes up most
    vocab: Vocab


def _lane(msg: HeadsRequest) -> Lane:
    """The contributions alone are a quick read; each head's top tokens are an [L*H, V] product,
    too long to run between another job's blocks."""
    return "interactive" if msg.k == 0 else "model"


@request(HeadsRequest, answers=HeadsFrame, lane=_lane)
def heads(ctx: RequestContext, msg: HeadsRequest) -> HeadsFrame:
    trace = ctx.stored_trace(msg.trace_id)
    target = trace.answer_id(msg.position, msg.target_id)
    cap = trace.capture
    hl = head_logit_lens(
        ctx.model, cap.resid, cap.head_out, msg.position, target, msg.k, between=ctx.checkpoint
    )
    return HeadsFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        position=msg.position,
        target_id=target,
        contrib=rounded(hl.contrib),
        top_ids=hl.top_ids.astype(np.int64).tolist(),
        vocab=ctx.vocab([*hl.top_ids.ravel().tolist(), target]),
    )
