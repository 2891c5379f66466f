"""``head_stats``: every head's role scores and attention entropy on a stored trace's prompt."""

from __future__ import annotations

from typing import Literal

import numpy as np

from layerscope.engine.analyses.attention import THRESHOLDS, head_roles
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request


class HeadStatsRequest(Request):
    """Role scores (previous / duplicate token, induction, first token) and entropy of every head
    of a stored trace"""

    type: Literal["head_stats"] = "head_stats"
    trace_id: str


class HeadStatsFrame(Frame):
    """Each head's role scores and mean attention entropy (blocks x heads), and derived roles"""

    type: Literal["head_stats"] = "head_stats"
    req: int
    trace_id: str
    n_tokens: int
    stats: dict[str, list[list[float]]]  # name -> [block][head]; entropy in nats
    thresholds: dict[str, float]  # role -> the score a head needs to count as one
    roles: dict[str, list[list[int]]]  # role -> [[block, head], ...]


def stats_fields(stats: dict[str, np.ndarray]) -> dict:
    """The ``stats``, ``thresholds`` and ``roles`` fields of a frame from ``head_stats(...)``."""
    return {
        "stats": {k: rounded(v) for k, v in stats.items()},
        "thresholds": {k: float(v) for k, v in THRESHOLDS.items()},
        "roles": {k: [[int(b), int(h)] for b, h in v] for k, v in head_roles(stats).items()},
    }


@request(HeadStatsRequest, answers=HeadStatsFrame, lane="interactive")
def head_stats_request(ctx: RequestContext, msg: HeadStatsRequest) -> HeadStatsFrame:
    trace = ctx.stored_trace(msg.trace_id)
    stats = trace.head_stats()
    return HeadStatsFrame(
        req=msg.req, trace_id=msg.trace_id, n_tokens=len(trace.ids), **stats_fields(stats)
    )
