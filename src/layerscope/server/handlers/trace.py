"""``trace``: trace a prompt (optionally generating, optionally with interventions), streamed."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, create_model, model_validator

from layerscope.engine.interventions import Bound, Intervention, bind
from layerscope.engine.statistics import STATISTICS
from layerscope.engine.trace import (
    Trace,
    check_length,
    lens_layer_names,
    prompt_ids,
    run_trace,
)
from layerscope.models.base import LensModel
from layerscope.server.context import RequestContext, ServerContext
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_GENERATE, MAX_PROMPT_CHARS, Frame, Request, Vocab


class TraceRequest(Request):
    """Trace a prompt, or raw token ids, and stream its tokens, then its lens layers.

    ``interventions`` edit the pass (a patched, ablated or steered run is an ordinary trace)."""

    type: Literal["trace"] = "trace"
    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)
    ids: list[int] | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)
    chat: bool = False
    generate: int = Field(0, ge=0, le=MAX_GENERATE)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_k: int | None = Field(None, ge=1, le=100_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    lens_top_k: int = Field(5, ge=1, le=20)
    interventions: list[Intervention] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _prompt_or_ids(self):
        if (self.prompt is None) == (self.ids is None):
            raise ValueError("give either a prompt or token ids")
        return self


class StartFrame(Frame):
    """A trace was accepted: the prompt's tokens (generated ones follow as ``token`` frames)."""

    type: Literal["start"] = "start"
    req: int
    n_lens_layers: int
    layers: list[str]
    tokens: list[int]
    n_prompt: int
    interventions: list[Intervention]
    vocab: Vocab


class TokenFrame(Frame):
    """One generated token, as soon as it is produced."""

    type: Literal["token"] = "token"
    req: int
    position: int
    id: int
    vocab: Vocab


LayerFrame = create_model(
    "LayerFrame",
    __base__=Frame,
    __doc__="The lens of one layer at every position: one array per lens statistic.",
    type=(Literal["layer"], "layer"),
    req=(int, ...),
    layer=(int, ...),
    **{s.name: (s.python_type(), ...) for s in STATISTICS},
    vocab=(Vocab, ...),
)


class DoneFrame(Frame):
    """The trace is complete and stored under ``trace_id``."""

    type: Literal["done"] = "done"
    req: int
    trace_id: str
    tokens: list[int]
    n_prompt: int
    lock_in: list[int]
    timings: dict[str, float]  # seconds: encode, forward, lens, total, plus "server"
    bytes_sent: int  # bytes of this stream's frames, this one excluded
    trace_bytes: int  # server memory the stored trace uses


def request_ids(server: ServerContext, msg: TraceRequest) -> list[int]:
    """The ids a trace request traces: its raw ids, or its prompt encoded (InputError if bad)."""
    if msg.ids is not None:
        ids = prompt_ids(server.model, None, msg.ids, False)
    else:
        ids = server.encode(msg.prompt, msg.chat)
    check_length(server.model, len(ids), msg.generate)
    return ids


def trace_request(
    model: LensModel, msg: TraceRequest, ids: list[int], bound: Bound, **callbacks: Any
) -> Trace:
    """Run the trace ``msg`` asks for on ``ids`` (from :func:`request_ids`)."""
    return run_trace(
        model,
        ids=ids,
        generate=msg.generate,
        chat=msg.chat,
        temperature=msg.temperature,
        top_k=msg.top_k,
        seed=msg.seed,
        lens_top_k=msg.lens_top_k,
        interventions=bound,
        **callbacks,
    )


@request(TraceRequest, answers=DoneFrame, streams=(StartFrame, TokenFrame, LayerFrame))
def trace(ctx: RequestContext, msg: TraceRequest) -> DoneFrame:
    model = ctx.model
    ids = request_ids(ctx.server, msg)
    bound = bind(model, msg.interventions)  # errors before anything streams
    ctx.emit(
        StartFrame(
            req=msg.req,
            n_lens_layers=model.info.n_lens_layers,
            layers=lens_layer_names(model),
            tokens=ids,
            n_prompt=len(ids),
            interventions=msg.interventions,
            vocab=ctx.vocab(ids),
        )
    )

    def on_token(position: int, token_id: int, text: str) -> None:
        ctx.emit(
            TokenFrame(req=msg.req, position=position, id=token_id, vocab=ctx.vocab([token_id]))
        )

    def on_layer(layer: int, arrays: dict[str, np.ndarray]) -> None:
        stats = {s.name: s.to_json(arrays[s.name]) for s in STATISTICS}
        ctx.emit(
            LayerFrame(
                req=msg.req, layer=layer, **stats, vocab=ctx.vocab(arrays["top_ids"].ravel())
            )
        )

    result = trace_request(model, msg, ids, bound, on_token=on_token, on_layer=on_layer)
    trace_id = ctx.store.put(ctx.session, result)
    timings = {k: round(float(v), 4) for k, v in result.timings.items()}
    timings["server"] = round(ctx.elapsed(), 4)
    return DoneFrame(
        req=msg.req,
        trace_id=trace_id,
        tokens=[int(i) for i in result.ids],
        n_prompt=int(result.n_prompt),
        lock_in=[int(x) for x in result.lock_in()],
        timings=timings,
        bytes_sent=ctx.bytes_emitted,
        trace_bytes=int(result.nbytes()),
    )
