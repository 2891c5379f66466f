"""``early_exit``: greedy generation read from one layer's lens, beside the full model's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.engine.decoding.early_exit import early_exit_generate
from layerscope.server.context import RequestContext
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab


class EarlyExitRequest(Request):
    """Greedy generation that reads the next token from the layer-``layer`` lens."""

    type: Literal["early_exit"] = "early_exit"
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    chat: bool = False
    layer: int = Field(ge=0)
    generate: int = Field(16, ge=1, le=64)


class EarlyExitFrame(Frame):
    """Tokens the first ``layer`` blocks write, and those the whole model writes."""

    type: Literal["early_exit"] = "early_exit"
    req: int
    layer: int
    n_lens_layers: int
    prompt: list[int]
    early: list[int]
    full: list[int]
    vocab: Vocab


@request(EarlyExitRequest, answers=EarlyExitFrame)
def early_exit(ctx: RequestContext, msg: EarlyExitRequest) -> EarlyExitFrame:
    model = ctx.model
    ids = ctx.encode(msg.prompt, msg.chat)
    stops = model.tokenizer.stop_ids if msg.chat else frozenset()
    early = early_exit_generate(model, ids, msg.layer, msg.generate, stops)
    full = early_exit_generate(model, ids, model.info.n_blocks, msg.generate, stops)
    return EarlyExitFrame(
        req=msg.req,
        layer=msg.layer,
        n_lens_layers=model.info.n_lens_layers,
        prompt=ids,
        early=early,
        full=full,
        vocab=ctx.vocab([*ids, *early, *full]),
    )
