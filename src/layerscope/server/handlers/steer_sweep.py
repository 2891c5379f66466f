"""``steer_sweep``: greedy generations of one prompt steered by a stored vector at several
strengths, with the concept's probability at each (strength 0 is the unsteered run)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from layerscope.engine.analyses.steering import steer_sweep as run_sweep
from layerscope.server.context import RequestContext
from layerscope.server.handlers.steering_vector import StoredVector
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab

MAX_STRENGTH = 64.0
MAX_SWEEP_GENERATE = 64
Strength = Annotated[float, Field(ge=-MAX_STRENGTH, le=MAX_STRENGTH, allow_inf_nan=False)]


class SteerSweepRequest(Request):
    """Generate from `prompt` steered by the stored vector `vector_id` at each strength."""

    type: Literal["steer_sweep"] = "steer_sweep"
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    chat: bool = False
    vector_id: str = Field(min_length=1, max_length=64)
    strengths: list[Strength] = Field(
        default_factory=lambda: [-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0], min_length=1, max_length=17
    )
    generate: int = Field(20, ge=1, le=MAX_SWEEP_GENERATE)
    concept: str | None = Field(None, min_length=1, max_length=64)


class SweepRowInfo(Frame):
    """One strength: what the model wrote, and the concept's mean probability while writing it."""

    strength: float
    ids: list[int]  # generated ids
    text: str  # generated text
    concept_prob: float | None  # mean over the generated steps of p(concept's first token)


class SteerSweepFrame(Frame):
    """Each strength's greedy continuation and the concept's probability"""

    type: Literal["steer_sweep"] = "steer_sweep"
    req: int
    vector_id: str
    prompt: list[int]
    layer: int
    method: str
    where: str
    concept_id: int | None
    rows: list[SweepRowInfo]
    vocab: Vocab


@request(SteerSweepRequest, answers=SteerSweepFrame)
def steer_sweep(ctx: RequestContext, msg: SteerSweepRequest) -> SteerSweepFrame:
    vec = ctx.store.get_as(msg.vector_id, StoredVector).vector
    ids = ctx.encode(msg.prompt, msg.chat)
    sweep = run_sweep(ctx.model, ids, vec, msg.strengths, msg.generate, msg.concept)
    rows = [
        SweepRowInfo(
            strength=r.strength,
            ids=r.ids,
            text=r.text,
            concept_prob=None if r.concept_prob is None else round(r.concept_prob, 6),
        )
        for r in sweep.rows
    ]
    seen = [*ids, *(i for r in sweep.rows for i in r.ids)]
    if sweep.concept_id is not None:
        seen.append(sweep.concept_id)
    return SteerSweepFrame(
        req=msg.req,
        vector_id=msg.vector_id,
        prompt=ids,
        layer=sweep.layer,
        method=sweep.method,
        where=sweep.where,
        concept_id=sweep.concept_id,
        rows=rows,
        vocab=ctx.vocab(seen),
    )
