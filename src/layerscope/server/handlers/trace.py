"""``trace``: trace a prompt (optionally generating, optionally with interventions), streamed."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, create_model, model_validator

from layerscope.engine.batching import batch_is_exact, run_traces
from layerscope.engine.interventions import Bound, Intervention, bind
from layerscope.engine.lens import LayerCallback
from layerscope.engine.statistics import STATISTICS
from layerscope.engine.trace import (
    Trace,
    check_length,
    lens_layer_names,
    prompt_ids,
    run_trace,
)
from layerscope.errors import LayerscopeError
from layerscope.models.base import LensModel
from layerscope.server.context import RequestContext, ServerContext
from layerscope.server.registry import Batching, Finish, request
from layerscope.server.schemas import MAX_GENERATE, MAX_PROMPT_CHARS, Frame, Request, Vocab
from layerscope.server.worker import Cancelled


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


def start_frame(ctx: RequestContext, msg: TraceRequest, ids: list[int]) -> StartFrame:
    """The frame that opens a trace's stream."""
    model = ctx.model
    return StartFrame(
        req=msg.req,
        n_lens_layers=model.info.n_lens_layers,
        layers=lens_layer_names(model),
        tokens=ids,
        n_prompt=len(ids),
        interventions=msg.interventions,
        vocab=ctx.vocab(ids),
    )


def layer_emitter(ctx: RequestContext, msg: TraceRequest) -> LayerCallback:
    """An ``on_layer`` callback that streams each lens layer as a ``layer`` frame."""

    def on_layer(layer: int, arrays: dict[str, np.ndarray]) -> None:
        stats = {s.name: s.to_json(arrays[s.name]) for s in STATISTICS}
        ctx.emit(
            LayerFrame(
                req=msg.req, layer=layer, **stats, vocab=ctx.vocab(arrays["top_ids"].ravel())
            )
        )

    return on_layer


# -- batching: plain traces of one length that wait together share one forward pass ------------

#: longest prompt (tokens) that joins a batch; longer ones run alone. Batching shares only the
#: forward pass, and the lens (per prompt) is most of a longer trace: on CPU with the default
#: model, 8 batched 8-token traces took ~0.7x the time of 8 single ones, at 32 tokens the gain
#: was within the noise of a shared machine (``bench/bench_batching.py``)
MAX_BATCH_TOKENS = 16


def batch_key(ctx: RequestContext, msg: TraceRequest) -> tuple | None:
    """Jobs with equal keys may share one forward pass; None: this one runs alone.

    Plain traces only (no generation, no interventions), of one length and the same settings,
    on the same model, at most :data:`MAX_BATCH_TOKENS` tokens, and only for lengths where a
    batched pass is exact (:func:`~layerscope.engine.batching.batch_is_exact`)."""
    if msg.generate or msg.interventions:
        return None
    try:
        n_tok = len(request_ids(ctx.server, msg))
    except LayerscopeError:  # its own run reports the error
        return None
    if n_tok > MAX_BATCH_TOKENS or not batch_is_exact(ctx.model, n_tok, 2):
        return None
    settings = (msg.chat, msg.lens_top_k, msg.temperature, msg.top_k, msg.seed)
    return (ctx.server.generation, n_tok, *settings)


def run_batch(ctxs: list[RequestContext], msgs: list[TraceRequest], finish: Finish) -> None:
    """Answer jobs with equal :func:`batch_key` keys exactly as :func:`trace` answers each: its
    start and layer frames through its own context, its trace in its own session, and its done
    frame (or the exception that ended it) through ``finish(i, ...)`` as soon as its own lens is
    done. A job whose client has gone is skipped (``Cancelled``); one job's error never fails the
    others."""
    groups: dict[int, list[tuple[int, list[int]]]] = {}
    for i, (ctx, msg) in enumerate(zip(ctxs, msgs, strict=True)):
        try:
            if ctx.closed.is_set():
                raise Cancelled()
            ids = request_ids(ctx.server, msg)
            ctx.emit(start_frame(ctx, msg, ids))
        except Exception as exc:
            finish(i, exc)
            continue
        groups.setdefault(len(ids), []).append((i, ids))  # one group, unless keys were wrong
    for group in groups.values():
        _run_group(ctxs, msgs, group, finish)


def _run_group(
    ctxs: list[RequestContext],
    msgs: list[TraceRequest],
    group: list[tuple[int, list[int]]],
    finish: Finish,
) -> None:
    """Trace one group of same-length jobs together, answering each as its trace completes."""
    failed: dict[int, BaseException] = {}  # by job index: the error its stream hit

    def guarded(i: int) -> LayerCallback:
        emit = layer_emitter(ctxs[i], msgs[i])

        def on_layer(layer: int, arrays: dict[str, np.ndarray]) -> None:
            if i not in failed:
                try:
                    emit(layer, arrays)
                except Exception as exc:  # this job's client only
                    failed[i] = exc

        return on_layer

    jobs = [i for i, _ in group]
    done: set[int] = set()

    def answer(i: int, result: Trace | None) -> None:
        if i in done:
            return
        done.add(i)
        if i in failed:
            finish(i, failed[i])
        elif result is None or ctxs[i].closed.is_set():
            finish(i, Cancelled())
        else:
            try:
                finish(i, done_frame(ctxs[i], msgs[i], result))
            except Exception as exc:
                finish(i, exc)

    msg = msgs[jobs[0]]
    try:
        traces = run_traces(
            ctxs[jobs[0]].model,
            [ids for _, ids in group],
            chat=msg.chat,
            temperature=msg.temperature,
            top_k=msg.top_k,
            seed=msg.seed,
            lens_top_k=msg.lens_top_k,
            on_layer=[guarded(i) for i in jobs],
            skip=lambda b: jobs[b] in failed or ctxs[jobs[b]].closed.is_set(),
            on_trace=lambda b, result: answer(jobs[b], result),
        )
    except Exception as exc:  # the shared pass failed: each job not yet answered hears it
        for i in jobs:
            if i not in done:
                finish(i, exc)
        return
    for i, result in zip(jobs, traces, strict=True):  # the skipped ones
        answer(i, result)


@request(
    TraceRequest,
    answers=DoneFrame,
    streams=(StartFrame, TokenFrame, LayerFrame),
    batching=Batching(key=batch_key, run=run_batch, max_size=8),
)
def trace(ctx: RequestContext, msg: TraceRequest) -> DoneFrame:
    model = ctx.model
    ids = request_ids(ctx.server, msg)
    bound = bind(model, msg.interventions)  # errors before anything streams
    ctx.emit(start_frame(ctx, msg, ids))

    def on_token(position: int, token_id: int, text: str) -> None:
        ctx.emit(
            TokenFrame(req=msg.req, position=position, id=token_id, vocab=ctx.vocab([token_id]))
        )

    on_layer = layer_emitter(ctx, msg)
    result = trace_request(model, msg, ids, bound, on_token=on_token, on_layer=on_layer)
    return done_frame(ctx, msg, result)


def done_frame(ctx: RequestContext, msg: TraceRequest, result: Trace) -> DoneFrame:
    """Store ``result`` in the request's session and say so: the frame that ends a trace."""
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
