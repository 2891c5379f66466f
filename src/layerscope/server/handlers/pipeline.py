"""``pipeline``: one position's data flow, sub-layer by sub-layer, with each stage's numbers."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from layerscope.engine.analyses.dataflow import pipeline as compute_pipeline
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request, Vocab


class PipelineRequest(Request):
    """The data flow at one position of a stored trace: every sub-layer's addition and lens read."""

    type: Literal["pipeline"] = "pipeline"
    trace_id: str
    position: int = Field(ge=0)
    target_id: int | None = Field(None, ge=0)  # default: the final layer's top prediction


class PipelineFrame(Frame):
    """Embedding → each block's attention then MLP → final norm: the stream's and additions'
    numbers, each sub-layer's direct logit contribution, and the lens after every sub-layer."""

    type: Literal["pipeline"] = "pipeline"
    req: int
    trace_id: str
    position: int
    target_id: int
    stages: list[str]  # "embed", "b0·attn", "b0·mlp", ..., "final norm"
    stops: list[str]  # the 2L+1 lens stops: "h_0", "b0·attn", "h_1", ..., "h_L"
    resid_norm: list[float]  # [2L+1] norm of the stream after each stop
    add_norm: list[float]  # [2L] norm of each sub-layer's addition
    add_cos: list[float]  # [2L] cosine between the addition and the stream it is added to
    dla: list[float]  # [2L] direct contribution of each addition to target_id's logit
    embed_dla: float  # the embedding's own direct contribution
    bias_dla: float  # the final norm's (and unembedding's) bias term: belongs to no stage
    target_logit: float  # the target's final logit (embed_dla + sum(dla) + bias_dla)
    lens_top_ids: list[list[int]]  # [2L+1][5]
    lens_top_probs: list[list[float]]  # [2L+1][5]
    lens_target_prob: list[float]  # [2L+1]
    vocab: Vocab


@request(PipelineRequest, answers=PipelineFrame, lane="interactive")
def pipeline(ctx: RequestContext, msg: PipelineRequest) -> PipelineFrame:
    trace = ctx.stored_trace(msg.trace_id)
    target = trace.answer_id(msg.position, msg.target_id)
    p = compute_pipeline(ctx.model, trace.capture, msg.position, target)
    top_ids = np.asarray(p.lens_top_ids).astype(np.int64)
    return PipelineFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        position=msg.position,
        target_id=int(p.target_id),
        stages=list(p.stages),
        stops=list(p.stops),
        resid_norm=rounded(p.resid_norm),
        add_norm=rounded(p.add_norm),
        add_cos=rounded(p.add_cos),
        dla=rounded(p.dla),
        embed_dla=round(float(p.embed_dla), 4),
        bias_dla=round(float(p.bias_dla), 4),
        target_logit=round(float(p.target_logit), 4),
        lens_top_ids=top_ids.tolist(),
        lens_top_probs=rounded(p.lens_top_probs, 5),
        lens_target_prob=rounded(p.lens_target_prob, 6),
        vocab=ctx.vocab([*top_ids.ravel().tolist(), int(p.target_id)]),
    )
