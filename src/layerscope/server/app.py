"""The FastAPI app: REST routes, the WebSocket endpoint and the web UI's static files."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Query, WebSocket
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from layerscope.engine.model import Model, lens_model_of
from layerscope.models.base import LensModel
from layerscope.server import bertviz, learn_routes, routes
from layerscope.server.context import ServerContext
from layerscope.server.handlers import REGISTRY
from layerscope.server.limits import Limits
from layerscope.server.metrics import CONTENT_TYPE_LATEST
from layerscope.server.models import CatalogModels, ModelSource
from layerscope.server.protocol import Connection, new_session
from layerscope.server.registry import Registry
from layerscope.server.security import LOOPBACK_NAMES, GuardMiddleware, SecurityHeaders
from layerscope.server.store import ResultStore
from layerscope.server.worker import ModelWorker

log = logging.getLogger("layerscope.server")
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
#: what `make web` puts in web/vendor/: the served page's libraries, plus the standalone bundle and
#: Plotly's smaller cartesian build that the "Download HTML" button inlines into its file
VENDOR_FILES = (
    "alpine.esm.min.js",
    "plotly.min.js",
    "plotly-cartesian.min.js",
    "standalone.js",
    "require.js",
    "d3.min.js",
    "jquery.min.js",  # these three: bertviz's iframe
    "driver.js",
    "driver.css",  # guided tours (driver.js, MIT)
)


def missing_vendor_files() -> list[str]:
    """Browser libraries the page needs that setup has not copied into web/vendor/."""
    return [f for f in VENDOR_FILES if not (WEB_DIR / "vendor" / f).is_file()]


def create_app(
    model: Model | LensModel,
    *,
    limits: Limits | None = None,
    registry: Registry | None = None,
    models: ModelSource | None = None,
    allowed_hosts: Iterable[str] | None = None,
    allowed_origins: Iterable[str] = (),
) -> FastAPI:
    """An app serving ``model``: one worker thread owns it; results stay in memory.

    ``limits`` bounds what it admits (:class:`Limits`); ``registry`` defaults to every request
    type in ``server/handlers/``; ``models`` (what a ``switch_model`` request may load) defaults
    to the model catalog. ``allowed_hosts``: the names the server answers to (default: the
    loopback names; ``security.server_names`` builds them for a bind address);
    ``allowed_origins``: other sites' origins whose pages may use it (see ``server/security.py``).
    """
    registry = registry or REGISTRY
    limits = limits or Limits()
    ctx = ServerContext(
        model=lens_model_of(model),
        worker=ModelWorker(limits),
        limits=limits,
        store=ResultStore(limits.session_bytes, limits.max_sessions, limits.store_bytes),
        models=models if models is not None else CatalogModels(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # graceful shutdown: refuse new jobs, cancel waiting ones, let the running one finish
        if not await asyncio.to_thread(ctx.worker.close, limits.shutdown_seconds):
            log.warning("the running job did not finish within %.0f s", limits.shutdown_seconds)

    app = FastAPI(
        lifespan=lifespan,
        title="layerscope",
        summary="Logit-lens explorer: trace a prompt and read every layer.",
        version="0.1.0",
    )
    app.state.ctx = ctx
    app.state.registry = registry
    app.include_router(routes.router)
    app.include_router(bertviz.router)
    app.include_router(learn_routes.router)

    @app.websocket("/ws")
    async def websocket(ws: WebSocket, session: str | None = Query(None)) -> None:
        if len(ctx.listeners) >= limits.max_connections:
            log.warning("refused a WebSocket: %d connections open", len(ctx.listeners))
            await ws.close(code=1013, reason="too many connections; try again later")
            return
        await ws.accept()
        await Connection(ctx, registry, ws, new_session(session)).serve()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    ctx.metrics.watch(ctx)  # queue depth, stored results and the model, read at each scrape

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics (every one is listed in ``server/metrics.py``)."""
        return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/static/vendor/{name}", include_in_schema=False, response_model=None)
    async def vendor(name: str) -> FileResponse | PlainTextResponse:
        path = WEB_DIR / "vendor" / name
        if name not in VENDOR_FILES or not path.is_file():
            return PlainTextResponse(
                f"{name} is missing: run `make web` (npm ci, then copy the dist files into "
                "src/layerscope/web/vendor/)",
                status_code=404,
            )
        return FileResponse(path, headers={"Cache-Control": "max-age=86400"})

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    # outermost last: foreign hosts and origins are refused before anything else runs
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        GuardMiddleware,
        hosts=LOOPBACK_NAMES if allowed_hosts is None else allowed_hosts,
        origins=allowed_origins,
    )

    @app.exception_handler(Exception)
    async def unhandled(request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    if missing := missing_vendor_files():
        log.warning("web UI libraries missing (%s): run `make web`", ", ".join(missing))
    return app
