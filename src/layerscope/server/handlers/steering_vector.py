"""``steering_vector``: a steering direction from contrast prompts (ActAdd for one pair, CAA for
several), kept in the result store under ``vector_id`` for ``steer_sweep``.

The frame carries the vector too (at full float32 precision), so a client can send it back in a
``trace`` request's Steer intervention: ``{"kind": "steer", "layer", "vector", "strength",
"where"}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from layerscope.engine.analyses.steering import MAX_PAIRS, SteeringVector, steering_vector
from layerscope.server.context import RequestContext
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request

MAX_CONTRAST_CHARS = 2_000
Contrast = Annotated[str, Field(min_length=1, max_length=MAX_CONTRAST_CHARS)]


@dataclass(frozen=True)
class StoredVector:
    """A steering vector as the result store keeps it."""

    vector: SteeringVector

    def nbytes(self) -> int:
        return int(self.vector.vector.nbytes) + 256


class SteeringVectorRequest(Request):
    """A steering vector from contrast prompts: one pair = ActAdd, several pairs = CAA.

    `layer` is the lens layer it is added to (default: the engine's, about 30% of the depth)."""

    type: Literal["steering_vector"] = "steering_vector"
    positive: list[Contrast] = Field(min_length=1, max_length=MAX_PAIRS)
    negative: list[Contrast] = Field(min_length=1, max_length=MAX_PAIRS)
    layer: int | None = Field(None, ge=0, le=MAX_PROMPT_CHARS)


class SteeringVectorFrame(Frame):
    """The steering vector, stored under `vector_id`, and how it is added"""

    type: Literal["steering_vector"] = "steering_vector"
    req: int
    vector_id: str
    layer: int  # lens layer h_layer (the input of block `layer`)
    n_blocks: int
    method: Literal["actadd", "caa"]
    where: Literal["all", "aligned", "generated"]
    shape: list[int]  # [d] (CAA) or [positions, d] (ActAdd)
    norm: float
    padding: str  # what padded the shorter ActAdd prompt ("" if nothing)
    vector: list[float] | list[list[float]]


@request(SteeringVectorRequest, answers=SteeringVectorFrame)
def steering_vector_request(ctx: RequestContext, msg: SteeringVectorRequest) -> SteeringVectorFrame:
    vec = steering_vector(ctx.model, msg.positive, msg.negative, msg.layer)
    vector_id = ctx.store.put(ctx.session, StoredVector(vec), prefix="v")
    return SteeringVectorFrame(
        req=msg.req,
        vector_id=vector_id,
        layer=vec.layer,
        n_blocks=ctx.model.info.n_blocks,
        method=vec.method,
        where=vec.where,
        shape=list(vec.vector.shape),
        norm=round(vec.norm, 5),
        padding=vec.padding,
        vector=vec.vector.tolist(),
    )
