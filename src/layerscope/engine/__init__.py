"""The engine: capture one pass, read it through the logit lens, build a Trace."""

from layerscope.engine.capture import Capture, capture
from layerscope.engine.lens import Lens, compute_lens, layer_logits
from layerscope.engine.trace import Trace, run_trace

__all__ = ["Capture", "Lens", "Trace", "capture", "compute_lens", "layer_logits", "run_trace"]
