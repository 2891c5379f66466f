"""layerscope: see how a transformer language model arrives at its output, layer by layer.

The public names load on first use (PEP 562), so ``import layerscope`` — and commands that never
touch a model, such as ``layerscope ask --retrieve-only`` — do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from layerscope.engine.interventions import Ablate, Patch, Steer
    from layerscope.engine.model import Model
    from layerscope.engine.trace import Trace
    from layerscope.errors import LayerscopeError
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

_LAZY = {
    "Ablate": "layerscope.engine.interventions",
    "Patch": "layerscope.engine.interventions",
    "Steer": "layerscope.engine.interventions",
    "Model": "layerscope.engine.model",
    "Trace": "layerscope.engine.trace",
    "LayerscopeError": "layerscope.errors",
    "LensModel": "layerscope.models.base",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'layerscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load(
    name_or_path: str | None = None,
    device: str | torch.device | None = None,
    *,
    step: int | None = None,
) -> Model:
    """Load a catalog model by name, or a model directory by path (see
    :func:`layerscope.models.catalog.load`), ready to trace."""
    from layerscope.engine.model import Model
    from layerscope.models import catalog

    return Model(catalog.load(name_or_path, device, step=step))
