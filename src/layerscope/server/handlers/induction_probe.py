"""``induction_probe``: a seeded random token sequence repeated twice; which heads induct."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from layerscope.engine.analyses.attention import induction_probe
from layerscope.server.context import RequestContext
from layerscope.server.handlers.head_stats import stats_fields
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request, Vocab


class InductionProbeRequest(Request):
    """Run ``n_tokens`` seeded random tokens twice and score every head's induction"""

    type: Literal["induction_probe"] = "induction_probe"
    n_tokens: int = Field(50, ge=4, le=256)
    seed: int = Field(0, ge=-(2**31), le=2**31 - 1)  # the page sends a 32-bit int


class HeadScore(BaseModel):
    """One head and its score."""

    block: int
    head: int
    score: float


class InductionProbeFrame(Frame):
    """The probe's tokens, every head's role scores on it, and the strongest induction heads"""

    type: Literal["induction_probe"] = "induction_probe"
    req: int
    n_tokens: int
    seed: int
    ids: list[int]  # BOS (if the model has one), the random tokens, the same tokens again
    stats: dict[str, list[list[float]]]  # name -> [block][head]
    thresholds: dict[str, float]
    roles: dict[str, list[list[int]]]
    top: list[HeadScore]  # by induction score, highest first
    median: float  # the median head's induction score
    vocab: Vocab


@request(InductionProbeRequest, answers=InductionProbeFrame)
def induction_probe_request(ctx: RequestContext, msg: InductionProbeRequest) -> InductionProbeFrame:
    probe = induction_probe(ctx.model, n_tokens=msg.n_tokens, seed=msg.seed)
    return InductionProbeFrame(
        req=msg.req,
        n_tokens=msg.n_tokens,
        seed=msg.seed,
        ids=[int(i) for i in probe.ids],
        top=[
            HeadScore(block=int(b), head=int(h), score=round(float(s), 4)) for b, h, s in probe.top
        ],
        median=round(float(np.median(probe.stats["induction"])), 4),
        vocab=ctx.vocab(probe.ids),
        **stats_fields(probe.stats),
    )
