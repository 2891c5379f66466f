"""Frames every connection gets whatever it asks (model summary, hello), and float rounding
for analysis frames."""

from __future__ import annotations

from typing import Any

import numpy as np

from layerscope.engine.statistics import STATISTICS
from layerscope.models.base import HOOK_POINTS, LensModel
from layerscope.server import schemas as S
from layerscope.server.registry import Registry


def model_summary(model: LensModel) -> S.ModelSummary:
    i = model.info
    return S.ModelSummary(
        name=i.name,
        family=i.family,
        n_lens_layers=i.n_lens_layers,
        n_blocks=i.n_blocks,
        n_heads=i.n_heads,
        d_model=i.d_model,
        d_head=i.d_head,
        d_mlp=i.d_mlp,
        vocab_size=i.vocab_size,
        context_length=i.context_length,
        n_params=i.n_params,
        parallel_residual=i.parallel_residual,
    )


def hello_frame(model: LensModel, registry: Registry, session: str) -> S.HelloFrame:
    """The first frame: the model, each request type's frames, the lens statistics, hook points."""
    return S.HelloFrame(
        session=session,
        model=model_summary(model),
        requests=registry.hello_requests(),
        statistics=[s.doc() for s in STATISTICS],
        points=dict(HOOK_POINTS),
    )


def rounded(a: Any, decimals: int = 4) -> list:
    """Nested lists of floats rounded to ``decimals`` (analysis frames: norms, scores, logits)."""
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()
