"""Head roles from attention patterns: TransformerLens ``detect_head`` scores, live.

Every score is TransformerLens's ``detect_head`` with its default options (method "mul",
``exclude_bos=False``, ``exclude_current_token=False``): the share of a head's whole T × T
attention that falls on the cells of a detection pattern, ``sum(A * P) / sum(A)``. Patterns (rows
are queries, columns keys):

- previous token: ``P[i, i-1] = 1``;
- duplicate token: ``P[i, j] = 1`` when ``tok_i == tok_j`` and ``j < i``;
- induction: the duplicate pattern shifted one column right (``P[i, j+1] = dup[i, j]``);
- first token: column 0 (attention to BOS / the first position).

Because every row of a causal pattern sums to 1 and ``sum(A) = T``, a perfect induction head on
``BOS + x + x`` scores only about one half: the first copy's rows hold no induction cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from layerscope.errors import InputError
from layerscope.models.base import LensModel

#: score names of :func:`head_stats`, in display order
STAT_NAMES = ("previous_token", "duplicate_token", "induction", "first_token", "entropy")

#: a head plays a role when its score is at least this (entropy is not a role)
THRESHOLDS: dict[str, float] = {
    "previous_token": 0.4,
    "duplicate_token": 0.4,
    "induction": 0.4,
    "first_token": 0.6,
}


def detection_patterns(ids: Sequence[int]) -> dict[str, torch.Tensor]:
    """The T × T float32 detection pattern of every role score for token ``ids``."""
    tok = torch.as_tensor(list(ids), dtype=torch.long)
    n = tok.shape[0]
    prev = torch.diag(torch.ones(max(n - 1, 0)), diagonal=-1) if n > 1 else torch.zeros(1, 1)
    dup = ((tok[:, None] == tok[None, :]) & torch.ones(n, n, dtype=torch.bool).tril(-1)).float()
    induction = torch.zeros(n, n)
    induction[:, 1:] = dup[:, :-1]
    first = torch.zeros(n, n)
    first[:, 0] = 1.0
    return {
        "previous_token": prev,
        "duplicate_token": dup,
        "induction": induction,
        "first_token": first,
    }


@torch.no_grad()
def head_stats(attn: torch.Tensor, ids: Sequence[int]) -> dict[str, np.ndarray]:
    """Role scores and mean entropy of every head: ``{name: float32 [L, H]}``.

    ``attn`` is [L, H, T, T] (rows = queries, each summing to 1); ``ids`` the T token ids.
    ``entropy`` is each query row's entropy (nats) averaged over the rows.
    """
    a = attn.detach().float().cpu()
    if a.dim() != 4 or a.shape[-1] != a.shape[-2] or a.shape[-1] != len(ids):
        raise ValueError(
            f"attention must be [L, H, T, T] with T = {len(ids)}; got {tuple(a.shape)}"
        )
    total = a.sum(dim=(-1, -2)).clamp_min(1e-30)
    out = {
        name: ((a * p).sum(dim=(-1, -2)) / total).numpy().astype(np.float32)
        for name, p in detection_patterns(ids).items()
    }
    plogp = torch.where(a > 0, a * torch.log(a.clamp_min(1e-30)), torch.zeros_like(a))
    out["entropy"] = (-plogp.sum(dim=-1)).mean(dim=-1).numpy().astype(np.float32)
    return out


def head_roles(stats: dict[str, np.ndarray]) -> dict[str, list[tuple[int, int]]]:
    """Role name -> the (block, head) pairs whose score reaches :data:`THRESHOLDS`."""
    return {
        role: [(int(b), int(h)) for b, h in zip(*np.nonzero(stats[role] >= thr), strict=True)]
        for role, thr in THRESHOLDS.items()
    }


@dataclass(frozen=True)
class InductionProbe:
    """A repeated random sequence's run and the heads that score highest on induction."""

    ids: list[int]  # BOS (if the model uses one) + n random tokens + the same n again
    stats: dict[str, np.ndarray]  # head_stats of that run
    top: list[tuple[int, int, float]]  # (block, head, induction score), highest first, top 10


def probe_ids(model: LensModel, n_tokens: int = 50, seed: int = 0) -> list[int]:
    """BOS (if any) + ``n_tokens`` seeded random ordinary token ids + the same again."""
    from layerscope.engine.model import lens_model_of

    lm = lens_model_of(model)
    tok = lm.tokenizer
    if not -(2**63) <= seed < 2**64:  # what torch.Generator takes
        raise InputError(f"seed {seed} is out of range (a 64-bit integer)")
    special = set(tok.stop_ids) | ({tok.bos_id} if tok.bos_id is not None else set())
    gen = torch.Generator().manual_seed(seed)
    chosen: list[int] = []
    while len(chosen) < n_tokens:
        for i in torch.randint(0, lm.info.vocab_size, (n_tokens,), generator=gen).tolist():
            if i not in special and len(chosen) < n_tokens:
                chosen.append(int(i))
    head = [tok.bos_id] if tok.bos_id is not None else []
    return head + chosen + chosen


def induction_probe(model: LensModel, n_tokens: int = 50, seed: int = 0) -> InductionProbe:
    """Run :func:`probe_ids` through ``model`` and score every head (:func:`head_stats`)."""
    from layerscope.engine.capture import capture
    from layerscope.engine.model import lens_model_of

    lm = lens_model_of(model)
    ids = probe_ids(lm, n_tokens, seed)
    if len(ids) > lm.info.context_length:  # learned position tables end there (an IndexError)
        raise InputError(
            f"{n_tokens} probe tokens twice ({len(ids)} tokens) exceed the model's context of "
            f"{lm.info.context_length} tokens"
        )
    cap = capture(lm, ids, attention=True)
    assert cap.attn is not None
    stats = head_stats(cap.attn, ids)
    ind = stats["induction"]
    order = np.argsort(-ind, axis=None, kind="stable")[:10]
    blocks, heads = np.unravel_index(order, ind.shape)
    top = [(int(b), int(h), float(ind[b, h])) for b, h in zip(blocks, heads, strict=True)]
    return InductionProbe(ids=ids, stats=stats, top=top)
