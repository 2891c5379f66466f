"""The effect of interventions on the next token: clean vs edited probabilities, last position.

``effect(model, ids, interventions)`` runs the prompt twice — once clean, once with the
interventions — and reports the target token's probability and log-probability in both runs (the
target defaults to the clean run's top token) and the top tokens of each. It is what an ablation
or a steer "did" to the prediction, in two numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from layerscope.engine.interventions import Bound, bind, hooks_for
from layerscope.errors import InputError
from layerscope.models.base import LensModel

TOP_K = 10


@dataclass(frozen=True)
class Effect:
    """How the next-token distribution at the prompt's last position changed.

    ``top_clean`` / ``top_new`` are the ``TOP_K`` most likely token ids of each run, best first,
    with their probabilities in ``top_clean_probs`` / ``top_new_probs``.
    """

    ids: list[int]
    target_id: int
    p_clean: float
    p_new: float
    logp_clean: float
    logp_new: float
    top_clean: list[int]
    top_new: list[int]
    top_clean_probs: list[float]
    top_new_probs: list[float]
    interventions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def delta_p(self) -> float:
        """p_new - p_clean."""
        return self.p_new - self.p_clean

    @property
    def delta_logp(self) -> float:
        """logp_new - logp_clean (nats)."""
        return self.logp_new - self.logp_clean

    @property
    def top_changed(self) -> bool:
        """Whether the most likely next token differs between the runs."""
        return self.top_clean[0] != self.top_new[0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the dataclass fields plus ``delta_p`` and ``delta_logp``)."""
        return {
            "ids": list(self.ids),
            "target_id": self.target_id,
            "p_clean": self.p_clean,
            "p_new": self.p_new,
            "logp_clean": self.logp_clean,
            "logp_new": self.logp_new,
            "delta_p": self.delta_p,
            "delta_logp": self.delta_logp,
            "top_clean": list(self.top_clean),
            "top_new": list(self.top_new),
            "top_clean_probs": list(self.top_clean_probs),
            "top_new_probs": list(self.top_new_probs),
            "interventions": list(self.interventions),
        }


def last_logprobs(
    model: LensModel, ids: Sequence[int], interventions: Sequence | Bound = ()
) -> torch.Tensor:
    """log p(next token) at the last position [V] (float32), with ``interventions`` applied."""
    bound = interventions if isinstance(interventions, Bound) else bind(model, interventions)
    hooks = hooks_for(bound)
    x = torch.tensor([list(ids)], dtype=torch.long, device=model.device)
    with torch.inference_mode(), hooks.installed():
        out = model.forward(x, last_logits_only=True)
    return torch.log_softmax(out.logits[0, -1].float(), dim=-1)


def effect(
    model: LensModel,
    ids: Sequence[int],
    interventions: Sequence,
    target_id: int | None = None,
) -> Effect:
    """The target token's probability at the last position of ``ids``, clean and edited."""
    ids = list(ids)
    if not ids:
        raise InputError("no token ids given")
    if len(ids) > (limit := model.info.context_length):
        raise InputError(
            f"the prompt ({len(ids)} tokens) is longer than the model's context ({limit} tokens)"
        )
    bound = bind(model, interventions)  # validates before anything runs
    clean = last_logprobs(model, ids)
    new = last_logprobs(model, ids, bound)
    if target_id is None:
        target_id = int(clean.argmax())
    elif not 0 <= target_id < clean.shape[0]:
        raise InputError(f"target token id {target_id} is outside the vocabulary")
    top_c = torch.topk(clean, TOP_K)
    top_n = torch.topk(new, TOP_K)
    return Effect(
        ids=ids,
        target_id=int(target_id),
        p_clean=float(clean[target_id].exp()),
        p_new=float(new[target_id].exp()),
        logp_clean=float(clean[target_id]),
        logp_new=float(new[target_id]),
        top_clean=top_c.indices.tolist(),
        top_new=top_n.indices.tolist(),
        top_clean_probs=top_c.values.exp().tolist(),
        top_new_probs=top_n.values.exp().tolist(),
        interventions=[iv.model_dump(mode="json") for iv in bound.rows[0]],
    )
