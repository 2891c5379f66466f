"""``attention_pattern``: one head's queries x keys attention of a stored trace (or a window)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.errors import InputError
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, Request

#: the most positions one frame carries on each axis (a 512-token trace fits whole)
MAX_WINDOW = 512


class AttentionPatternRequest(Request):
    """One block/head's attention (queries x keys) of a stored trace, over positions
    ``start``..``end`` (end exclusive; default: the whole trace, at most 512 positions)."""

    type: Literal["attention_pattern"] = "attention_pattern"
    trace_id: str
    block: int = Field(ge=0)
    head: int = Field(ge=0)
    start: int = Field(0, ge=0)
    end: int | None = Field(None, ge=1)


class AttentionPatternFrame(Frame):
    """Attention probabilities of one head: ``pattern[q][k]`` for positions ``start``..``end``."""

    type: Literal["attention_pattern"] = "attention_pattern"
    req: int
    trace_id: str
    block: int
    head: int
    start: int
    end: int  # exclusive
    n_tokens: int  # the whole trace's length
    pattern: list[list[float]]  # [query][key], rows within the window (mass outside it is left out)


def attention_of(ctx: RequestContext, trace_id: str):
    """The stored trace's attention [L, H, T, T] (InputError when the trace kept none)."""
    attn = ctx.stored_trace(trace_id).capture.attn
    if attn is None:
        raise InputError(f"trace {trace_id!r} was run without attention patterns")
    return attn


def window(start: int, end: int | None, n_tokens: int) -> tuple[int, int]:
    """A checked [start, end) range of positions (InputError when empty or too long)."""
    end = min(n_tokens, start + MAX_WINDOW) if end is None else end
    if not 0 <= start < end <= n_tokens:
        raise InputError(f"positions {start}..{end} are not a range inside 0..{n_tokens}")
    if end - start > MAX_WINDOW:
        raise InputError(f"at most {MAX_WINDOW} positions at once (asked {end - start})")
    return start, end


@request(AttentionPatternRequest, answers=AttentionPatternFrame, lane="interactive")
def attention_pattern(ctx: RequestContext, msg: AttentionPatternRequest) -> AttentionPatternFrame:
    attn = attention_of(ctx, msg.trace_id)
    n_blocks, n_heads, n_tokens = attn.shape[0], attn.shape[1], attn.shape[2]
    if msg.block >= n_blocks or msg.head >= n_heads:
        raise InputError(
            f"block {msg.block} head {msg.head} is outside {n_blocks} blocks x {n_heads} heads"
        )
    start, end = window(msg.start, msg.end, n_tokens)
    pat = attn[msg.block, msg.head, start:end, start:end].float().cpu().numpy()
    return AttentionPatternFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        block=msg.block,
        head=msg.head,
        start=start,
        end=end,
        n_tokens=n_tokens,
        pattern=rounded(pat),
    )
