"""Which models a server may switch to, and how it loads them.

The default source is the model catalog (``layerscope models``): every catalog name, available or
not, with the reason when not (e.g. "not fetched: run `layerscope fetch gemma3-270m`"). Tests and
embedding applications pass their own source, e.g. :class:`LoaderModels` over a few loaders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import torch
from pydantic import BaseModel

from layerscope.models.base import LensModel


class ModelChoice(BaseModel):
    """One model a server knows by name."""

    name: str
    description: str
    available: bool  # it can be loaded on this machine now
    reason: str | None = None  # why not, and how to fix it (None when available)
    loaded: bool = False  # the server is serving it now


class ModelSource(Protocol):
    """Lists switchable models and loads one by name."""

    def choices(self, loaded: str) -> list[ModelChoice]:
        """Every known model (``loaded``: the name being served now, marked as such)."""
        ...

    def load(self, name: str, device: torch.device) -> LensModel:
        """Load ``name`` onto ``device`` (a LayerscopeError says what went wrong)."""
        ...


class CatalogModels:
    """The catalog's models: those whose weights are on this machine can be loaded."""

    def choices(self, loaded: str) -> list[ModelChoice]:
        from layerscope.models.catalog import catalog_status

        return [
            ModelChoice(
                name=s.name,
                description=s.description,
                available=s.available,
                reason=s.reason,
                loaded=s.name == loaded,
            )
            for s in catalog_status()
        ]

    def load(self, name: str, device: torch.device) -> LensModel:
        from layerscope.engine.model import lens_model_of
        from layerscope.models.catalog import load

        return lens_model_of(load(name, device=device))


class LoaderModels:
    """Models given as loaders by name (each available): tests, applications embedding a server."""

    def __init__(
        self,
        loaders: Mapping[str, Callable[[], LensModel]],
        missing: Mapping[str, str] | None = None,
    ) -> None:
        self._loaders = dict(loaders)
        self._missing = dict(missing or {})  # name -> why it cannot be loaded

    def choices(self, loaded: str) -> list[ModelChoice]:
        rows = [
            ModelChoice(name=n, description=n, available=True, loaded=n == loaded)
            for n in self._loaders
        ]
        rows += [
            ModelChoice(name=n, description=n, available=False, reason=why)
            for n, why in self._missing.items()
        ]
        return rows

    def load(self, name: str, device: torch.device) -> LensModel:
        from layerscope.engine.model import lens_model_of

        return lens_model_of(self._loaders[name]())
