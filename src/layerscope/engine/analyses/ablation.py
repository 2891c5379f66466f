"""Ablation helpers: choose heads by role, and rank every head by what ablating it does.

:func:`heads_with_role` turns the head-role scores of
:mod:`layerscope.engine.analyses.attention` into ``[(block, head), ...]`` ready for
``Ablate(heads=...)``. :func:`head_sweep` ablates each head on its own and ranks the heads by how
much the target token's probability at the last position drops (Δp = p_ablated − p_clean).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from layerscope.engine.analyses.attention import THRESHOLDS
from layerscope.engine.analyses.effect import last_logprobs
from layerscope.engine.interventions import Ablate, bind, hooks_for
from layerscope.errors import InputError
from layerscope.models.base import LensModel


def heads_with_role(
    trace_or_stats: Any, role: str, threshold: float | None = None
) -> list[tuple[int, int]]:
    """The (block, head) pairs whose ``role`` score reaches ``threshold`` (default: the role's
    :data:`~layerscope.engine.analyses.attention.THRESHOLDS`), highest score first.

    ``trace_or_stats`` is a :class:`~layerscope.engine.trace.Trace` (its ``head_stats()``) or the
    stats dict itself. Roles: ``previous_token``, ``duplicate_token``, ``induction``,
    ``first_token``.
    """
    stats = trace_or_stats if isinstance(trace_or_stats, Mapping) else trace_or_stats.head_stats()
    if role not in THRESHOLDS:
        raise InputError(f"unknown head role {role!r}; use one of {', '.join(THRESHOLDS)}")
    thr = THRESHOLDS[role] if threshold is None else float(threshold)
    if not np.isfinite(thr):
        raise InputError(f"the threshold must be a finite number, got {threshold}")
    scores = np.asarray(stats[role])
    blocks, heads = np.nonzero(scores >= thr)
    order = np.argsort(-scores[blocks, heads], kind="stable")
    return [(int(blocks[i]), int(heads[i])) for i in order]


@dataclass(frozen=True)
class HeadSweep:
    """The target's probability with each head ablated alone (zero or prompt-mean)."""

    ids: list[int]
    target_id: int
    mode: str
    p_clean: float
    prob: np.ndarray  # float32 [L, H]: p(target) with head (block, head) ablated

    @property
    def delta(self) -> np.ndarray:
        """prob - p_clean [L, H] (negative: the head helps the target)."""
        return (self.prob - self.p_clean).astype(np.float32)

    def ranking(self, k: int | None = None) -> list[tuple[int, int, float]]:
        """(block, head, Δp), most negative Δp first (the heads the target needs most)."""
        flat = np.argsort(self.delta, axis=None, kind="stable")
        n_heads = self.prob.shape[1]
        out = [(int(i // n_heads), int(i % n_heads), float(self.delta.flat[i])) for i in flat]
        return out if k is None else out[:k]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ids": list(self.ids),
            "target_id": self.target_id,
            "mode": self.mode,
            "p_clean": self.p_clean,
            "prob": self.prob.tolist(),
            "ranking": [list(r) for r in self.ranking(10)],
        }


def head_sweep(
    model: LensModel,
    ids: Sequence[int],
    target_id: int | None = None,
    mode: Literal["zero", "mean"] = "zero",
    batch_size: int = 16,
) -> HeadSweep:
    """Ablate every head of every block on its own (batched, one row per head) and record the
    probability of ``target_id`` (default: the clean top token) at the last position."""
    ids = list(ids)
    if not ids:
        raise InputError("no token ids given")
    clean = last_logprobs(model, ids)
    if target_id is None:
        target_id = int(clean.argmax())
    elif not 0 <= target_id < clean.shape[0]:
        raise InputError(f"target token id {target_id} is outside the vocabulary")
    n_blocks, n_heads = model.info.n_blocks, model.info.n_heads
    cells = [(b, h) for b in range(n_blocks) for h in range(n_heads)]
    prob = np.zeros((n_blocks, n_heads), dtype=np.float32)
    x = torch.tensor([ids], dtype=torch.long, device=model.device)
    for start in range(0, len(cells), batch_size):
        chunk = cells[start : start + batch_size]
        rows = [[Ablate(heads=[cell], mode=mode)] for cell in chunk]
        hooks = hooks_for(bind(model, per_row=rows))
        with torch.inference_mode(), hooks.installed():
            out = model.forward(x.expand(len(chunk), -1), last_logits_only=True)
        p = torch.softmax(out.logits[:, -1].float(), dim=-1)[:, target_id].cpu().numpy()
        for (b, h), value in zip(chunk, p, strict=True):
            prob[b, h] = value
    return HeadSweep(ids, int(target_id), mode, float(clean[target_id].exp()), prob)
