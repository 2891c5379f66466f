"""Frames every connection gets whatever it asks: the model summary and the hello frame."""

from __future__ import annotations

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
