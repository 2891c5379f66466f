"""``pca``: 2-D trajectories of some positions' residual stream through every layer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.engine.analyses.pca import pca_trajectories
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request


class PcaRequest(Request):
    """PCA of the residual vectors of ``positions`` (after the final norm if ``normed``)."""

    type: Literal["pca"] = "pca"
    trace_id: str
    positions: list[int] = Field(min_length=1, max_length=16)
    normed: bool = True


class PcaFrame(Frame):
    """Each layer's point for each position in the plane of the first two components."""

    type: Literal["pca"] = "pca"
    req: int
    trace_id: str
    positions: list[int]
    coords: list[list[list[float]]]  # [layers][positions][2]
    explained: list[float]  # variance ratio of the two components


@request(PcaRequest, answers=PcaFrame, lane="interactive")
def pca(ctx: RequestContext, msg: PcaRequest) -> PcaFrame:
    cap = ctx.stored_trace(msg.trace_id).capture
    traj = pca_trajectories(ctx.model, cap.resid, msg.positions, normed=msg.normed)
    return PcaFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        positions=traj.positions,
        coords=rounded(traj.coords),
        explained=rounded(traj.explained),
    )
