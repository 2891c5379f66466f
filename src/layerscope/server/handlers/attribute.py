"""``attribute``: which input tokens push the model toward one next token (token attribution).

Integrated gradients (or gradient x input) of log p(target) at the last position over the token
embeddings (:mod:`layerscope.engine.analyses.attribution`). With ``interventions`` the request is
answered for the run without them and the run with them, for the same target, so a client can
show what the intervention changed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from layerscope.engine.analyses.attribution import Attribution
from layerscope.engine.analyses.attribution import attribute as run_attribution
from layerscope.engine.interventions import Intervention
from layerscope.engine.trace import prompt_ids
from layerscope.errors import InputError
from layerscope.server.context import RequestContext
from layerscope.server.frames import rounded
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab

MAX_STEPS = 512
#: the longest prompt attributed (every integration step is a forward and backward pass)
MAX_TOKENS = 512


class AttributeRequest(Request):
    """Attribute log p(target) at the last position of a prompt (or raw ids) to its tokens."""

    type: Literal["attribute"] = "attribute"
    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)
    ids: list[int] | None = Field(None, min_length=1, max_length=MAX_TOKENS)
    chat: bool = False
    target: str | None = Field(None, min_length=1, max_length=200)  # text of exactly one token
    target_id: int | None = Field(None, ge=0)  # default (neither): the model's top prediction
    method: Literal["integrated_gradients", "gradient_x_input"] = "integrated_gradients"
    steps: int = Field(64, ge=1, le=MAX_STEPS)
    interventions: list[Intervention] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _one_of_each(self):
        if (self.prompt is None) == (self.ids is None):
            raise ValueError("give either a prompt or token ids")
        if self.target is not None and self.target_id is not None:
            raise ValueError("give the target as text or as an id, not both")
        return self


class AttributionRun(Frame):
    """One run's scores and its completeness check."""

    scores: list[float]  # one per input token
    f_input: float  # log p(target | input)
    f_baseline: float | None  # log p(target | baseline); null for gradient x input
    delta: float | None  # sum(scores) - (f_input - f_baseline): Captum's convergence delta
    rel_delta: float | None  # |delta| / |f_input - f_baseline|
    p_target: float


class AttributionFrame(Frame):
    """Each input token's attribution score toward ``target_id``, with the completeness check;
    ``intervened`` is the same under the request's interventions (null without any)."""

    type: Literal["attribution"] = "attribution"
    req: int
    ids: list[int]
    target_id: int
    method: str
    steps: int
    baseline: str  # what the baseline input is, in words
    baseline_ids: list[int] | None
    clean: AttributionRun
    intervened: AttributionRun | None
    interventions: list[Intervention]
    vocab: Vocab


def _run(a: Attribution) -> AttributionRun:
    def num(x: float | None, d: int = 6) -> float | None:
        return None if x is None else round(float(x), d)

    return AttributionRun(
        scores=rounded(a.scores, 6),
        f_input=num(a.f_input),
        f_baseline=num(a.f_baseline),
        delta=num(a.delta),
        rel_delta=num(a.rel_delta),
        p_target=num(a.p_target),
    )


@request(AttributeRequest, answers=AttributionFrame)
def attribute(ctx: RequestContext, msg: AttributeRequest) -> AttributionFrame:
    if msg.ids is not None:
        ids = prompt_ids(ctx.model, None, msg.ids, False)
    else:
        ids = ctx.encode(msg.prompt, msg.chat)
    if len(ids) > MAX_TOKENS:
        raise InputError(
            f"attribution takes at most {MAX_TOKENS} tokens; this prompt has {len(ids)}"
        )
    target = msg.target_id if msg.target_id is not None else msg.target
    clean = run_attribution(ctx.model, ids, target, msg.method, msg.steps)
    intervened = None
    if msg.interventions:
        intervened = run_attribution(
            ctx.model, ids, clean.target_id, msg.method, msg.steps, msg.interventions
        )
    return AttributionFrame(
        req=msg.req,
        ids=ids,
        target_id=clean.target_id,
        method=clean.method,
        steps=clean.steps,
        baseline=clean.baseline,
        baseline_ids=clean.baseline_ids,
        clean=_run(clean),
        intervened=None if intervened is None else _run(intervened),
        interventions=msg.interventions,
        vocab=ctx.vocab([*ids, clean.target_id, *(clean.baseline_ids or [])]),
    )
