"""``effect``: what interventions do to the next token at the prompt's last position — the target's
probability and log-probability in the clean and the edited run, and each run's top tokens.

Before it runs, a mean ablation without ``reference_ids`` takes them from ``reference_text``; the
frame echoes the interventions as run, so a client can send the very same list in a ``trace``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from layerscope.engine.analyses.effect import effect as run_effect
from layerscope.engine.interventions import Ablate, Intervention
from layerscope.engine.trace import prompt_ids
from layerscope.errors import InputError
from layerscope.models.base import LensModel
from layerscope.server.context import RequestContext
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request, Vocab

MAX_TARGET_CHARS = 64


class EffectRequest(Request):
    """How interventions change the next token's probability at the prompt's last position.

    The target is `target_id`, or the single token `target` (text), or else the clean run's top
    token."""

    type: Literal["effect"] = "effect"
    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)
    ids: list[int] | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)
    chat: bool = False
    interventions: list[Intervention] = Field(min_length=1, max_length=64)
    target_id: int | None = Field(None, ge=0)
    target: str | None = Field(None, min_length=1, max_length=MAX_TARGET_CHARS)
    reference_text: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)

    @model_validator(mode="after")
    def _one_each(self):
        if (self.prompt is None) == (self.ids is None):
            raise ValueError("give either a prompt or token ids")
        if self.target is not None and self.target_id is not None:
            raise ValueError("give either target (text) or target_id, not both")
        return self


class EffectFrame(Frame):
    """The target's probability and log-probability in the clean and the edited run, and each
    run's most likely next tokens"""

    type: Literal["effect"] = "effect"
    req: int
    ids: list[int]
    target_id: int
    p_clean: float
    p_new: float
    logp_clean: float
    logp_new: float
    top_clean: list[int]  # most likely next tokens, best first
    top_new: list[int]
    top_clean_probs: list[float]
    top_new_probs: list[float]
    interventions: list[Intervention]  # as run (mean-ablation references filled in)
    vocab: Vocab


def single_token(model: LensModel, text: str) -> int:
    """The id of ``text`` if it is exactly one token (InputError otherwise)."""
    ids = list(model.tokenizer.encode(text))
    bos = model.tokenizer.bos_id
    if bos is not None and ids and ids[0] == bos:
        ids = ids[1:]
    if len(ids) != 1:
        raise InputError(
            f"the target {text!r} is {len(ids)} tokens; give one token (e.g. ' Paris', with its "
            "leading space)"
        )
    return ids[0]


def with_reference(interventions: list, reference: list[int] | None) -> list:
    """``interventions`` with ``reference`` as the reference ids of every mean ablation that has
    none (unchanged without a reference)."""
    if reference is None:
        return interventions
    return [
        iv.model_copy(update={"reference_ids": tuple(reference)})
        if isinstance(iv, Ablate) and iv.mode == "mean" and iv.reference_ids is None
        else iv
        for iv in interventions
    ]


@request(EffectRequest, answers=EffectFrame)
def effect(ctx: RequestContext, msg: EffectRequest) -> EffectFrame:
    model = ctx.model
    if msg.ids is not None:
        ids = prompt_ids(model, None, msg.ids, False)
    else:
        ids = ctx.encode(msg.prompt, msg.chat)
    reference = None if msg.reference_text is None else ctx.encode(msg.reference_text, False)
    interventions = with_reference(msg.interventions, reference)
    target = msg.target_id if msg.target is None else single_token(model, msg.target)
    e = run_effect(model, ids, interventions, target)
    return EffectFrame(
        req=msg.req,
        ids=ids,
        target_id=e.target_id,
        p_clean=round(e.p_clean, 6),
        p_new=round(e.p_new, 6),
        logp_clean=round(e.logp_clean, 5),
        logp_new=round(e.logp_new, 5),
        top_clean=e.top_clean,
        top_new=e.top_new,
        top_clean_probs=[round(p, 6) for p in e.top_clean_probs],
        top_new_probs=[round(p, 6) for p in e.top_new_probs],
        interventions=interventions,
        vocab=ctx.vocab([*ids, e.target_id, *e.top_clean, *e.top_new]),
    )
