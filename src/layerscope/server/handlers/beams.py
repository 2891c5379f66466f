"""``beams``: beam search from a prompt, its best beams and the tree they grew in.

Opening a beam is an ordinary ``trace`` of its ``ids`` (prompt + generated)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.engine.decoding.beams import beam_search
from layerscope.server.context import RequestContext
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab

MAX_BEAM_WIDTH = 16
MAX_BEAM_LENGTH = 64


class BeamsRequest(Request):
    """Beam search: the `width` best continuations of a prompt and the tree they grew in."""

    type: Literal["beams"] = "beams"
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    chat: bool = False
    width: int = Field(4, ge=1, le=MAX_BEAM_WIDTH)
    length: int = Field(12, ge=1, le=MAX_BEAM_LENGTH)
    length_penalty: float = Field(1.0, ge=0.0, le=4.0)
    stop_at_eos: bool = True


class BeamInfo(Frame):
    """One final beam: its ids (prompt + generated), text and log-probability."""

    ids: list[int]
    text: str  # the generated part, decoded
    logprob: float  # sum of the generated tokens' log-probabilities
    score: float  # logprob / n_generated ** length_penalty
    finished: bool  # ended with a stop token
    node: int  # the tree node of its last token


class BeamNodeInfo(Frame):
    """One kept expansion of the search: a token appended to its parent's sequence."""

    id: int
    parent: int | None  # None: the prompt (node 0, no token)
    token_id: int | None
    logprob: float
    cum_logprob: float
    step: int
    rank: int  # 1 = best among those kept at its step
    finished: bool
    beam_ranks: list[int]  # final beams (1-based ranks) whose path runs through it


class BeamsFrame(Frame):
    """The best beams, best first, and every expansion kept along the way (a tree)."""

    type: Literal["beams"] = "beams"
    req: int
    prompt: list[int]
    width: int
    length_penalty: float
    beams: list[BeamInfo]
    tree: list[BeamNodeInfo]
    vocab: Vocab


@request(BeamsRequest, answers=BeamsFrame)
def beams(ctx: RequestContext, msg: BeamsRequest) -> BeamsFrame:
    ids = ctx.encode(msg.prompt, msg.chat)
    result = beam_search(ctx.model, ids, msg.width, msg.length, msg.length_penalty, msg.stop_at_eos)
    last: dict[int, int] = {}  # beam rank -> deepest node on its path
    for node in result.tree:
        for r in node.beam_ranks:
            if r not in last or node.step > result.tree[last[r]].step:
                last[r] = node.id
    out = [
        BeamInfo(
            ids=b.ids,
            text=b.text,
            logprob=round(b.logprob, 5),
            score=round(b.score, 5),
            finished=b.finished,
            node=last.get(rank, 0),
        )
        for rank, b in enumerate(result.beams, start=1)
    ]
    tree = [
        BeamNodeInfo(
            id=n.id,
            parent=n.parent,
            token_id=n.token_id,
            logprob=round(n.logprob, 5),
            cum_logprob=round(n.cum_logprob, 5),
            step=n.step,
            rank=n.rank,
            finished=n.finished,
            beam_ranks=list(n.beam_ranks),
        )
        for n in result.tree
    ]
    seen = [*ids, *(n.token_id for n in result.tree if n.token_id is not None)]
    return BeamsFrame(
        req=msg.req,
        prompt=ids,
        width=msg.width,
        length_penalty=msg.length_penalty,
        beams=out,
        tree=tree,
        vocab=ctx.vocab(seen),
    )
