"""``branch``: interactive rollback — swap one token of a run for another candidate and let the
model write on from it (greedy).

The branch is stored as a trace (``trace_id``: ``cell`` and the other trace requests read it);
opening it on the scrubber is an ordinary ``trace`` of its ``ids``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.engine.decoding.branching import branch as run_branch
from layerscope.engine.trace import prompt_ids
from layerscope.server.context import RequestContext
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab

MAX_BRANCH_GENERATE = 64


class BranchRequest(Request):
    """Put `token_id` at `position` of `ids` (keeping what comes before) and generate from there."""

    type: Literal["branch"] = "branch"
    ids: list[int] = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    position: int = Field(ge=1, le=MAX_PROMPT_CHARS)
    token_id: int = Field(ge=0)
    generate: int = Field(16, ge=0, le=MAX_BRANCH_GENERATE)


class BranchFrame(Frame):
    """The branch: the kept prefix, the new token at `position`, then what the model wrote."""

    type: Literal["branch"] = "branch"
    req: int
    trace_id: str
    position: int
    token_id: int
    was_id: int | None  # the token that stood at `position` before (None: appended)
    ids: list[int]  # ids[:position] + [token_id] + generated
    text: str  # the new token and everything after it, decoded
    vocab: Vocab


@request(BranchRequest, answers=BranchFrame)
def branch(ctx: RequestContext, msg: BranchRequest) -> BranchFrame:
    ids = prompt_ids(ctx.model, None, msg.ids, False)  # validated (ids in the vocabulary)
    trace = run_branch(ctx.model, ids, msg.position, msg.token_id, msg.generate, lens_top_k=5)
    new = [int(i) for i in trace.ids]
    trace_id = ctx.store.put(ctx.session, trace)
    return BranchFrame(
        req=msg.req,
        trace_id=trace_id,
        position=msg.position,
        token_id=msg.token_id,
        was_id=ids[msg.position] if msg.position < len(ids) else None,
        ids=new,
        text=ctx.model.tokenizer.decode(new[msg.position :]),
        vocab=ctx.vocab(new + ids[msg.position : msg.position + 1]),
    )
