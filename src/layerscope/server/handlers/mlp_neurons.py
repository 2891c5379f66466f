"""``mlp_neurons``: the neurons of one MLP that fire most at one position, what each one's output
direction promotes and suppresses, and its direct logit contribution (the MLP panel)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from layerscope.engine.analyses.components import top_neurons
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request, Vocab


class MlpNeuronsRequest(Request):
    """The ``k`` most active neurons (``mlp_post``) of one block's MLP at one position."""

    type: Literal["mlp_neurons"] = "mlp_neurons"
    trace_id: str
    block: int = Field(ge=0)
    position: int = Field(ge=0)
    target_id: int | None = Field(None, ge=0)  # default: the final layer's top prediction
    k: int = Field(10, ge=1, le=50)
    n_tokens: int = Field(5, ge=1, le=20)


class MlpNeuronsFrame(Frame):
    """Top neurons of ``block``'s MLP at ``position``: activation, direct contribution to
    ``target_id``'s logit, and the tokens each one's output direction pushes up and down."""

    type: Literal["mlp_neurons"] = "mlp_neurons"
    req: int
    trace_id: str
    block: int
    position: int
    target_id: int
    neurons: list[int]  # [k] neuron indices, most active first
    acts: list[float]  # [k]
    dla: list[float]  # [k], logit units
    promoted: list[list[int]]  # [k][n_tokens]
    suppressed: list[list[int]]  # [k][n_tokens]
    vocab: Vocab


@request(MlpNeuronsRequest, answers=MlpNeuronsFrame, lane="interactive")
def mlp_neurons(ctx: RequestContext, msg: MlpNeuronsRequest) -> MlpNeuronsFrame:
    trace = ctx.stored_trace(msg.trace_id)
    target = trace.answer_id(msg.position, msg.target_id)
    n = top_neurons(
        ctx.model, trace.capture, msg.block, msg.position, target, k=msg.k, n_tokens=msg.n_tokens
    )
    promoted = np.asarray(n.promoted).astype(np.int64)
    suppressed = np.asarray(n.suppressed).astype(np.int64)
    return MlpNeuronsFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        block=msg.block,
        position=msg.position,
        target_id=int(n.target_id),
        neurons=np.asarray(n.neurons).astype(np.int64).tolist(),
        acts=rounded(n.acts),
        dla=rounded(n.dla),
        promoted=promoted.tolist(),
        suppressed=suppressed.tolist(),
        vocab=ctx.vocab([*promoted.ravel().tolist(), *suppressed.ravel().tolist(), target]),
    )
