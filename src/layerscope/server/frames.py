"""Build protocol frames from engine results: compact arrays plus a per-connection token table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from layerscope.models.base import LensModel
from layerscope.server import schemas as S


class VocabTracker:
    """Remembers which token texts a connection has been sent; hands out only the new ones."""

    def __init__(self, model: LensModel) -> None:
        self._tok = model.tokenizer
        self._sent: set[int] = set()

    def delta(self, ids: Iterable[int]) -> dict[str, str]:
        new: dict[str, str] = {}
        for i in ids:
            i = int(i)
            if i not in self._sent:
                self._sent.add(i)
                new[str(i)] = self._tok.token_text(i)
        return new


def model_summary(model: LensModel) -> S.ModelSummary:
    i = model.info
    return S.ModelSummary(
        name=i.name,
        family=i.family,
        n_layers=i.n_layers + 1,
        n_blocks=i.n_layers,
        n_heads=i.n_heads,
        d_model=i.d_model,
        vocab_size=i.vocab_size,
        context_length=i.context_length,
        n_params=i.n_params,
    )


def _floats(a: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def _nullable(a: np.ndarray, digits: int) -> list[float | None]:
    return [None if math.isnan(x) else x for x in _floats(a, digits)]


def layer_frame(
    req: int, layer: int, arrays: Mapping[str, np.ndarray], vocab: VocabTracker
) -> S.LayerFrame:
    """One lens layer; ``arrays`` hold the layer's slices ([T] or [T, k]) or the full [L+1, ...]."""

    def get(name: str) -> np.ndarray:
        a = np.asarray(arrays[name])
        want = 2 if name.startswith("top_") else 1
        return a[layer] if a.ndim > want else a

    top_ids = get("top_ids").astype(np.int64)
    return S.LayerFrame(
        req=req,
        layer=layer,
        top_ids=top_ids.tolist(),
        top_probs=_floats(get("top_probs"), 4),
        final_rank=get("final_rank").astype(np.int64).tolist(),
        final_prob=_floats(get("final_prob"), 4),
        next_rank=get("next_rank").astype(np.int64).tolist(),
        next_prob=_nullable(get("next_prob"), 4),
        entropy=_floats(get("entropy"), 3),
        kl_final=_floats(get("kl_final"), 3),
        vocab=vocab.delta(np.unique(top_ids)),
    )


def lens_arrays(trace: Any) -> dict[str, np.ndarray]:
    """The lens arrays of a Trace by name."""
    names = (
        "top_ids",
        "top_probs",
        "final_rank",
        "final_prob",
        "next_rank",
        "next_prob",
        "entropy",
        "kl_final",
    )
    return {n: np.asarray(getattr(trace.lens, n)) for n in names}
