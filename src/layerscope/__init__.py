"""layerscope: see how a transformer language model arrives at its output, layer by layer."""

from __future__ import annotations

import torch

from layerscope.engine.interventions import Ablate, Patch, Steer
from layerscope.engine.model import Model
from layerscope.engine.trace import Trace
from layerscope.errors import LayerscopeError
from layerscope.models import catalog
from layerscope.models.base import LensModel

__version__ = "0.1.0"
__all__ = [
    "Ablate",
    "LayerscopeError",
    "LensModel",
    "Model",
    "Patch",
    "Steer",
    "Trace",
    "__version__",
    "load",
]


def load(
    name_or_path: str | None = None,
    device: str | torch.device | None = None,
    *,
    step: int | None = None,
) -> Model:
    """Load a catalog model by name, or a model directory by path (see
    :func:`layerscope.models.catalog.load`), ready to trace."""
    return Model(catalog.load(name_or_path, device, step=step))
