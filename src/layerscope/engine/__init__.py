"""The engine: hooks and interventions, capture, the logit lens, traces, analyses, decoding."""

from layerscope.engine.capture import Capture, capture
from layerscope.engine.hooks import Hooks
from layerscope.engine.interventions import Ablate, Patch, Steer, bind
from layerscope.engine.lens import Lens, compute_lens, layer_logits
from layerscope.engine.model import Model
from layerscope.engine.trace import Trace, run_trace

__all__ = [
    "Ablate",
    "Capture",
    "Hooks",
    "Lens",
    "Model",
    "Patch",
    "Steer",
    "Trace",
    "bind",
    "capture",
    "compute_lens",
    "layer_logits",
    "run_trace",
]
