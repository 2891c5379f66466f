"""Branching: replace one token of a run with another candidate and regenerate from there.

``branch(ids, position, token_id)`` keeps ``ids[:position]``, puts ``token_id`` at ``position``
and generates ``generate`` tokens after it, as an ordinary trace (same sampling settings and seed
→ the same branch). ``position`` may be any position from 1 to ``len(ids)`` (``len(ids)`` appends
a token instead of replacing one); position 0 is refused, since the first token (the BOS, where a
family has one) has nothing before it to branch from. The new trace's prompt is the kept prefix
plus the new token (``n_prompt = position + 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layerscope.engine.trace import Trace, run_trace
from layerscope.errors import InputError
from layerscope.models.base import LensModel


def branch_ids(model: LensModel, ids: Sequence[int], position: int, token_id: int) -> list[int]:
    """``ids[:position] + [token_id]``, with clear errors for a bad position or token."""
    ids = [int(i) for i in ids]
    if not ids:
        raise InputError("no token ids to branch from")
    if isinstance(position, bool) or not isinstance(position, int):
        raise InputError(f"the branch position must be an integer, got {position!r}")
    if not 1 <= position <= len(ids):
        raise InputError(
            f"branch position {position} is outside 1..{len(ids)} (position 0 has no context "
            f"before it; {len(ids)} appends a token)"
        )
    vocab = model.info.vocab_size
    if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 <= token_id < vocab:
        raise InputError(f"token id {token_id!r} is outside the vocabulary 0..{vocab - 1}")
    return [*ids[:position], token_id]


def branch(
    model: LensModel,
    ids: Sequence[int],
    position: int,
    token_id: int,
    generate: int = 20,
    **trace_kwargs: Any,
) -> Trace:
    """Trace ``ids[:position] + [token_id]`` and generate ``generate`` tokens after it
    (``trace_kwargs``: temperature, top_k, seed, interventions... as for :func:`run_trace`)."""
    if "prompt" in trace_kwargs or "ids" in trace_kwargs:
        raise InputError("a branch takes its ids from the run it branches; give no prompt")
    return run_trace(
        model, ids=branch_ids(model, ids, position, token_id), generate=generate, **trace_kwargs
    )
