"""``compare``: two prompts traced side by side, and the per-layer cosine similarity of their
residual streams (:mod:`layerscope.engine.analyses.comparison`).

Both traces are stored (with their activations and attention) and their ids returned, so the
follow-up requests on a stored trace (``attention_pattern``, ``cell``, ...) work on either; the
frame carries each trace's lens top-1 per layer and position for the client's strips. The prompts
may differ in length. Choosing another pair of positions is another ``compare``."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from layerscope.engine.analyses.comparison import DIVERGE_BELOW
from layerscope.engine.analyses.comparison import compare as run_compare
from layerscope.engine.trace import Trace
from layerscope.errors import InputError
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab

#: the longest prompt compared (each is a full trace with attention)
MAX_TOKENS = 512


class CompareRequest(Request):
    """Trace two prompts and compare their residual streams layer by layer (at the last
    positions, and at ``position_a`` / ``position_b``: default the last ones)."""

    type: Literal["compare"] = "compare"
    prompt_a: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    prompt_b: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    chat: bool = False
    position_a: int | None = Field(None, ge=0)
    position_b: int | None = Field(None, ge=0)
    threshold: float = Field(DIVERGE_BELOW, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _both_positions_or_none(self):
        if (self.position_a is None) != (self.position_b is None):
            raise ValueError("give both positions (position_a and position_b) or neither")
        return self


class CompareFrame(Frame):
    """Both traces (stored under ``trace_a`` / ``trace_b``), each one's lens top-1 at every layer
    and position, and the cosine of their residual streams per lens layer."""

    type: Literal["compare"] = "compare"
    req: int
    trace_a: str
    trace_b: str
    ids_a: list[int]
    ids_b: list[int]
    top_a: list[list[int]]  # [layer][position]: the lens's top-1 token
    prob_a: list[list[float]]  # its probability
    top_b: list[list[int]]
    prob_b: list[list[float]]
    position_a: int
    position_b: int
    cos_last: list[float]  # [layer]: at the two last positions
    cos_pair: list[float]  # [layer]: at position_a of a and position_b of b
    threshold: float
    diverge: list[int]  # layers where cos_last < threshold
    diverge_pair: list[int]  # layers where cos_pair < threshold
    first_diverge: int | None  # the first layer from which cos_last stays below threshold
    biggest_drops: list[int]  # layers whose step down in cos_last is largest
    vocab: Vocab


def _tops(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    return trace.lens.top_ids[:, :, 0], trace.lens.top_probs[:, :, 0]


@request(CompareRequest, answers=CompareFrame)
def compare(ctx: RequestContext, msg: CompareRequest) -> CompareFrame:
    ids_a = ctx.encode(msg.prompt_a, msg.chat)
    ids_b = ctx.encode(msg.prompt_b, msg.chat)
    if max(len(ids_a), len(ids_b)) > MAX_TOKENS:
        raise InputError(f"each prompt may have at most {MAX_TOKENS} tokens to compare")
    positions = None if msg.position_a is None else (msg.position_a, msg.position_b)
    cmp = run_compare(ctx.model, ids_a, ids_b, positions, msg.threshold, lens_top_k=1)
    top_a, prob_a = _tops(cmp.trace_a)
    top_b, prob_b = _tops(cmp.trace_b)
    return CompareFrame(
        req=msg.req,
        trace_a=ctx.store.put(ctx.session, cmp.trace_a),
        trace_b=ctx.store.put(ctx.session, cmp.trace_b),
        ids_a=ids_a,
        ids_b=ids_b,
        top_a=top_a.astype(np.int64).tolist(),
        prob_a=rounded(prob_a, 5),
        top_b=top_b.astype(np.int64).tolist(),
        prob_b=rounded(prob_b, 5),
        position_a=cmp.positions[0],
        position_b=cmp.positions[1],
        cos_last=rounded(cmp.cos_last, 5),
        cos_pair=rounded(cmp.cos_pair, 5),
        threshold=cmp.threshold,
        diverge=cmp.diverge,
        diverge_pair=[int(i) for i in np.flatnonzero(cmp.cos_pair < cmp.threshold)],
        first_diverge=cmp.first_diverge,
        biggest_drops=cmp.biggest_drops,
        vocab=ctx.vocab([*ids_a, *ids_b, *top_a.ravel().tolist(), *top_b.ravel().tolist()]),
    )
