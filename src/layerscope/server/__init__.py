"""The explorer's server: FastAPI app, WebSocket protocol, model worker, in-memory trace store."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fastapi import FastAPI

    from layerscope.models.base import LensModel
    from layerscope.server.limits import Limits


def create_app(model: LensModel, **kwargs) -> FastAPI:
    """The app serving an already loaded ``model`` (see ``layerscope.server.app.create_app``)."""
    from layerscope.server.app import create_app as _create

    return _create(model, **kwargs)


def serve(
    model_name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allow_hosts: Sequence[str] = (),
    allow_origins: Sequence[str] = (),
    log_json: bool = False,
    limits: Limits | None = None,
) -> None:
    """Load ``model_name`` (None: the embedded default) and serve the explorer until interrupted.

    It answers only to its own names (loopback, ``host`` unless a wildcard, ``allow_hosts``) and
    only to pages from its own origins or ``allow_origins`` (``server/security.py``); bound
    anywhere but loopback it prints a warning first (there is no authentication). Its logs (a
    line per request, ``server/logs.py``) go to stderr, as JSON lines with ``log_json``.
    ``limits`` bounds what it admits (``server/limits.py``).
    """
    import uvicorn

    from layerscope.server import logs

    logs.configure(json=log_json)

    from layerscope.models.catalog import load
    from layerscope.server.security import (
        exposure_warning,
        is_loopback,
        is_wildcard,
        normalize_origin,
        server_names,
    )

    hosts = server_names(host, allow_hosts)
    origins = [normalize_origin(o) for o in allow_origins]  # ValueError names a bad one

    model = load(model_name)
    if model.device.type == "cpu":
        from layerscope.engine import fused

        print("layerscope: compiling the fused lens kernel (seconds; cached on disk)", flush=True)
        fused.enable()
    from layerscope.server.limits import Limits

    limits = limits or Limits()
    app = create_app(model, allowed_hosts=hosts, allowed_origins=origins, limits=limits)
    if warning := exposure_warning(host, port, hosts, origins):
        print(warning, flush=True)
    shown = "localhost" if is_loopback(host) or is_wildcard(host) else host
    shown = f"[{shown}]" if ":" in shown else shown  # an IPv6 address in a URL
    print(f"layerscope: serving {model.info.name} at http://{shown}:{port}/", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        # a frame past this closes the socket (1009); past max_message_bytes, a bad_request
        ws_max_size=max(4 * limits.max_message_bytes, 1 << 20),
        timeout_graceful_shutdown=int(limits.shutdown_seconds) + 5,
    )
