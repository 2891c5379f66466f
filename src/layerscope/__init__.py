"""layerscope: see how a transformer language model arrives at its output, layer by layer."""

from layerscope.engine.trace import Trace
from layerscope.errors import LayerscopeError
from layerscope.models.base import LensModel
from layerscope.models.catalog import load

__version__ = "0.1.0"
__all__ = ["LayerscopeError", "LensModel", "Trace", "__version__", "load"]
