"""One module per request type; importing this package registers every one of them.

``REGISTRY`` imported from here holds them all. A new request type is a new module here that
declares its request and frames and decorates its handler with
:func:`layerscope.server.registry.request`; nothing else needs an edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from layerscope.server.registry import REGISTRY

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["REGISTRY"]  # complete once this package is imported
