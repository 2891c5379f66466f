"""REST routes: health, models, whole traces as JSON (for scripts) and the protocol's schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from layerscope.engine.interventions import bind
from layerscope.engine.trace import Trace
from layerscope.errors import LayerscopeError
from layerscope.server import schemas as S
from layerscope.server.context import ServerContext
from layerscope.server.frames import model_summary
from layerscope.server.handlers.trace import TraceRequest, request_ids, trace_request
from layerscope.server.store import UnknownIdError
from layerscope.server.worker import BusyError


class PlainErrorsRoute(APIRoute):
    """A route whose 422 answer names each invalid field and why, without echoing the input.

    FastAPI's own 422 body quotes what was sent; a JSON body may hold ``NaN``, ``Infinity`` or a
    lone surrogate (``"\\ud800"``) that Python's reader accepts and no JSON writer can send
    back, which turned a bad request into a 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse({"detail": plain_errors(exc.errors())}, status_code=422)

        return run


def plain_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors as FastAPI lists them, less ``input`` and ``ctx``, always valid UTF-8."""

    def text(x: object) -> str:
        return str(x).encode("utf-8", "replace").decode("utf-8")

    return [
        {
            "type": text(e.get("type", "")),
            "loc": [p if isinstance(p, int) else text(p) for p in e.get("loc", ())],
            "msg": text(e.get("msg", "")),
        }
        for e in errors
    ]


router = APIRouter(prefix="/api", route_class=PlainErrorsRoute)
REST_SESSION = "rest-api"


def _ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


@router.get("/health", response_model=S.Health)
async def health(request: Request) -> S.Health:
    """Liveness plus what the worker and the trace store hold."""
    ctx = _ctx(request)
    return S.Health(
        model=ctx.model.info.name,
        busy=ctx.worker.busy,
        pending=ctx.worker.pending,
        results=len(ctx.store),
        result_bytes=ctx.store.nbytes,
    )


@router.get("/models", response_model=S.ModelsResponse)
async def models(request: Request) -> S.ModelsResponse:
    """The loaded model and the models a ``switch_model`` request can load here (one model is
    served at a time); ``models`` also lists the unavailable ones, each with why."""
    ctx = _ctx(request)
    loaded = ctx.model
    rows = await asyncio.to_thread(ctx.models.choices, loaded.info.name)  # looks at the disk
    return S.ModelsResponse(
        loaded=model_summary(loaded),
        available=[r.name for r in rows if r.available],
        models=rows,
    )


class TraceBody(TraceRequest):
    """A trace request over REST (``type`` and ``req`` may be left out)."""


@router.post("/trace", responses=S.error_responses(400, 503))
async def trace(body: TraceBody, request: Request) -> dict[str, Any]:
    """Run a trace and return it whole (the ``Trace.to_dict`` schema plus ``trace_id``)."""
    ctx = _ctx(request)

    def job() -> Trace:  # encoded on the worker too: the model may be switched while it waits
        ids = request_ids(ctx, body)
        return trace_request(ctx.model, body, ids, bind(ctx.model, body.interventions))

    try:
        result = await ctx.worker.run(job, client=REST_SESSION, type_="trace")
    except BusyError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    except LayerscopeError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    trace_id = ctx.store.put(REST_SESSION, result)
    return {"trace_id": trace_id, **result.to_dict()}


@router.get("/traces/{trace_id}", responses=S.error_responses(404))
async def get_trace(trace_id: str, request: Request) -> dict[str, Any]:
    """A stored trace (from the WebSocket or REST) as JSON."""
    try:
        result = _ctx(request).store.get(trace_id)
    except UnknownIdError as exc:
        raise HTTPException(status_code=404, detail=f"no trace {trace_id!r} (expired?)") from exc
    if not isinstance(result, Trace):
        raise HTTPException(status_code=404, detail=f"{trace_id!r} is not a trace")
    return {"trace_id": trace_id, **result.to_dict()}


@router.get("/protocol")
async def protocol(request: Request) -> dict[str, Any]:
    """JSON Schemas of the WebSocket frames (what clients send, what the server answers) and
    each request type's frames."""
    return request.app.state.registry.json_schema()
