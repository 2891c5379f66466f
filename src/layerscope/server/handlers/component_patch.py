"""``component_patch``: activation patching of every component (the residual stream at each layer
and position, each block's attention and MLP output at each position, each head's output) from a
clean run into a corrupted one.

Opening one cell as a run is an ordinary ``trace`` of the corrupted ids with that cell's patch
(:meth:`layerscope.engine.analyses.component_patching.ComponentSweep.cell_patch`): ``resid``
(lens layer l, position t) patches ``resid_pre`` of block 0 (l = 0) or ``resid_post`` of block
l - 1 at [t]; ``attn_out`` / ``mlp_out`` (block b, position t) that point of block b at [t];
``head_out`` (block b, head h) that head at every position (``positions`` null, ``heads`` [h])."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from layerscope.engine.analyses.component_patching import COMPONENTS, component_patch_sweep
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab

Component = Literal["resid", "attn_out", "mlp_out", "head_out"]


class ComponentPatchRequest(Request):
    """Patch each component of the clean run into the corrupted run, cell by cell."""

    type: Literal["component_patch"] = "component_patch"
    clean: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    corrupted: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    answer_id: int | None = Field(None, ge=0)  # default: the clean run's top prediction
    components: list[Component] = Field(
        default_factory=lambda: list(COMPONENTS), min_length=1, max_length=len(COMPONENTS)
    )

    @field_validator("components")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each component may be named once")
        return v


class ComponentPatchFrame(Frame):
    """p(clean answer) with each component cell patched, and the share of it restored: resid
    [layer][position], attn_out and mlp_out [block][position], head_out [block][head]."""

    type: Literal["component_patch"] = "component_patch"
    req: int
    sweep_id: str
    clean: list[int]
    corrupted: list[int]
    answer_id: int
    p_clean: float
    p_corrupted: float
    prob: dict[str, list[list[float]]]  # component -> rows x columns
    restored: dict[str, list[list[float]]]  # (prob - p_corrupted) / (p_clean - p_corrupted)
    vocab: Vocab


@request(ComponentPatchRequest, answers=ComponentPatchFrame)
def component_patch(ctx: RequestContext, msg: ComponentPatchRequest) -> ComponentPatchFrame:
    clean = ctx.encode(msg.clean, False)
    corrupted = ctx.encode(msg.corrupted, False)
    order = [c for c in COMPONENTS if c in msg.components]
    sweep = component_patch_sweep(ctx.model, clean, corrupted, msg.answer_id, tuple(order))
    sweep_id = ctx.store.put(ctx.session, sweep, prefix="c")
    restored = sweep.restored
    return ComponentPatchFrame(
        req=msg.req,
        sweep_id=sweep_id,
        clean=clean,
        corrupted=corrupted,
        answer_id=sweep.answer_id,
        p_clean=round(sweep.p_clean, 5),
        p_corrupted=round(sweep.p_corrupted, 5),
        prob={c: rounded(sweep.prob[c]) for c in order},
        restored={c: rounded(restored[c]) for c in order},
        vocab=ctx.vocab([*clean, *corrupted, sweep.answer_id]),
    )
