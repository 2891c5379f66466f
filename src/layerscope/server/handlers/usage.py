"""``usage``: the page's debounced report of what the person did (layers scrubbed, views opened,
experiments run) since its last report. Counts and names only, never a prompt or any text; it feeds
the ``/metrics`` success measures (``server/metrics.py``) and runs inline, never on the model."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints

from layerscope.engine.interventions import Intervention
from layerscope.errors import InputError
from layerscope.server.context import RequestContext
from layerscope.server.metrics import NAME_RE
from layerscope.server.registry import REGISTRY, request
from layerscope.server.schemas import Frame, Request

MAX_NAMES = 64
"""View or experiment names one report may carry."""

UsageName = Annotated[str, StringConstraints(pattern=NAME_RE.pattern)]
"""A view id (``heatmap``, ``ablation``) or an experiment (``effect``, ``trace_ablate``)."""


@cache
def experiment_names() -> frozenset[str]:
    """What ``experiments`` may name: a request type, or ``trace_<kind>`` for a trace run with
    interventions of that kind (``trace_ablate``, ``trace_patch``, ``trace_steer``)."""
    kinds = {c.model_fields["kind"].default for c in get_args(get_args(Intervention)[0])}
    return frozenset({t.type for t in REGISTRY} - {"usage"} | {f"trace_{k}" for k in kinds})


class UsageRequest(Request):
    """What the person did since the page's last report: layer changes, view ids opened and
    experiments run (request types, or ``trace_<kind>``); counts and ids only."""

    type: Literal["usage"] = "usage"
    layers_scrubbed: int = Field(0, ge=0, le=100_000, strict=True)
    views: list[UsageName] = Field(default_factory=list, max_length=MAX_NAMES)
    experiments: list[UsageName] = Field(default_factory=list, max_length=MAX_NAMES)


class UsageRecordedFrame(Frame):
    """The report is counted: this session's totals so far (all 0 where there is no session)."""

    type: Literal["usage_recorded"] = "usage_recorded"
    req: int
    layers_scrubbed: int
    views: int
    experiments: int


@request(UsageRequest, answers=UsageRecordedFrame, lane="inline")
def usage(ctx: RequestContext, msg: UsageRequest) -> UsageRecordedFrame:
    if unknown := sorted(set(msg.experiments) - experiment_names()):
        raise InputError(
            f"unknown experiment {unknown[0]!r}: name a request type or trace_<intervention kind>"
        )
    stats = ctx.stats
    ctx.server.metrics.record_usage(stats, msg.layers_scrubbed, msg.views, msg.experiments)
    return UsageRecordedFrame(
        req=msg.req,
        layers_scrubbed=stats.layers_scrubbed if stats else 0,
        views=len(stats.views) if stats else 0,
        experiments=len(stats.experiments) if stats else 0,
    )
