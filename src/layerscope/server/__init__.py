"""The explorer's server: FastAPI app, WebSocket protocol, model worker, in-memory trace store."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from layerscope.models.base import LensModel


def create_app(model: LensModel, **kwargs) -> FastAPI:
    """The app serving an already loaded ``model`` (see ``layerscope.server.app.create_app``)."""
    from layerscope.server.app import create_app as _create

    return _create(model, **kwargs)


def serve(model_name: str | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load ``model_name`` (None: the embedded default) and serve the explorer until interrupted."""
    import uvicorn

    from layerscope.models.catalog import load

    model = load(model_name)
    if model.device.type == "cpu":
        from layerscope.engine import fused

        print("layerscope: compiling the fused lens kernel (seconds; cached on disk)", flush=True)
        fused.enable()
    app = create_app(model)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    print(f"layerscope: serving {model.info.name} at http://{shown}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
