"""``patch_sweep``: activation patching of every (layer, position) of a clean/corrupted pair.

Opening one cell as a run is an ordinary ``trace`` of the corrupted ids with that cell's patch
(see the README's protocol section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.engine.analyses.patching import patch_sweep as run_sweep
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab


class PatchSweepRequest(Request):
    """Patch the clean run's residual into the corrupted run at every cell."""

    type: Literal["patch_sweep"] = "patch_sweep"
    clean: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    corrupted: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    answer_id: int | None = Field(None, ge=0)  # default: the clean run's top prediction


class PatchSweepFrame(Frame):
    """Probability of the clean answer with each cell patched (and how much of it came back)."""

    type: Literal["patch_sweep"] = "patch_sweep"
    req: int
    sweep_id: str
    clean: list[int]
    corrupted: list[int]
    answer_id: int
    p_clean: float
    p_corrupted: float
    prob: list[list[float]]  # [layers][positions]
    restored: list[list[float]]  # (prob - p_corrupted) / (p_clean - p_corrupted)
    vocab: Vocab


@request(PatchSweepRequest, answers=PatchSweepFrame)
def patch_sweep(ctx: RequestContext, msg: PatchSweepRequest) -> PatchSweepFrame:
    clean = ctx.encode(msg.clean, False)
    corrupted = ctx.encode(msg.corrupted, False)
    sweep = run_sweep(ctx.model, clean, corrupted, msg.answer_id)
    sweep_id = ctx.store.put(ctx.session, sweep, prefix="p")
    return PatchSweepFrame(
        req=msg.req,
        sweep_id=sweep_id,
        clean=clean,
        corrupted=corrupted,
        answer_id=sweep.answer_id,
        p_clean=round(sweep.p_clean, 5),
        p_corrupted=round(sweep.p_corrupted, 5),
        prob=rounded(sweep.prob),
        restored=rounded(sweep.restored),
        vocab=ctx.vocab([*clean, *corrupted, sweep.answer_id]),
    )
