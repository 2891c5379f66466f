"""``cell``: the full top-k of one (layer, position) cell of a stored trace."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.engine.statistics import BY_NAME
from layerscope.server.context import RequestContext
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request, Vocab


class CellRequest(Request):
    """The ``k`` most likely tokens of one lens cell (beyond the streamed top-k)."""

    type: Literal["cell"] = "cell"
    trace_id: str
    layer: int = Field(ge=0)
    position: int = Field(ge=0)
    k: int = Field(20, ge=1, le=100)


class CellFrame(Frame):
    """One cell's top-k ids and their probabilities."""

    type: Literal["cell"] = "cell"
    req: int
    trace_id: str
    layer: int
    position: int
    ids: list[int]
    probs: list[float]
    vocab: Vocab


@request(CellRequest, answers=CellFrame, lane="interactive")
def cell(ctx: RequestContext, msg: CellRequest) -> CellFrame:
    ids, probs = ctx.stored_trace(msg.trace_id).cell_top(msg.layer, msg.position, msg.k)
    return CellFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        layer=msg.layer,
        position=msg.position,
        ids=ids,
        probs=BY_NAME["top_probs"].to_json(probs),
        vocab=ctx.vocab(ids),
    )
