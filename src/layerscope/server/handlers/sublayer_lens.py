"""``sublayer_lens``: a stored trace read through the lens after every sub-layer (2L + 1 stops)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.engine.analyses.dataflow import sublayer_labels
from layerscope.engine.analyses.dataflow import sublayer_lens as compute_sublayer_lens
from layerscope.engine.statistics import STATISTICS
from layerscope.server.context import RequestContext
from layerscope.server.handlers.trace import LayerFrame
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request


class SublayerLensRequest(Request):
    """The lens of a stored trace after each attention and each MLP: 2L + 1 stops, streamed as
    ``layer`` frames (``layer`` = the stop's index), the last stop first."""

    type: Literal["sublayer_lens"] = "sublayer_lens"
    trace_id: str
    k: int = Field(5, ge=1, le=20)


class SublayerLensFrame(Frame):
    """The sub-layer lens is complete: its stops' labels (h_0, b0·attn, h_1, …, h_L)."""

    type: Literal["sublayer_lens"] = "sublayer_lens"
    req: int
    trace_id: str
    n_stops: int
    labels: list[str]


@request(SublayerLensRequest, answers=SublayerLensFrame, streams=(LayerFrame,), lane="interactive")
def sublayer_lens(ctx: RequestContext, msg: SublayerLensRequest) -> SublayerLensFrame:
    trace = ctx.stored_trace(msg.trace_id)
    lens = compute_sublayer_lens(ctx.model, trace.capture, k=msg.k)
    n = lens.n_lens_layers
    for stop in [n - 1, *range(n - 1)]:  # the final stop first, as a trace streams its layers
        arrays = lens.layer(stop)
        stats = {s.name: s.to_json(arrays[s.name]) for s in STATISTICS}
        ctx.emit(
            LayerFrame(req=msg.req, layer=stop, **stats, vocab=ctx.vocab(arrays["top_ids"].ravel()))
        )
    return SublayerLensFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        n_stops=n,
        labels=sublayer_labels(ctx.model.info.n_blocks),
    )
