"""Activation patching sweeps, built on :class:`~layerscope.engine.interventions.Patch`.

Run a *clean* and a *corrupted* prompt of the same token count; for every lens layer l and position
t, run the corrupted prompt again with ``h_l[t]`` patched from the clean run and measure the
probability of the clean answer at the last position. Cells that restore it show where the
information that tells the two prompts apart lives. One cell opened as a run is an ordinary trace
of the corrupted prompt with :meth:`PatchSweep.cell_patch` attached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from layerscope.engine.hooks import Hooks
from layerscope.engine.interventions import Patch, SourceCache, bind, hooks_for, resid_site
from layerscope.errors import InputError
from layerscope.models.base import LensModel


@dataclass(frozen=True)
class PatchSweep:
    """Probability of the clean answer with the clean residual patched in at each cell."""

    clean_ids: list[int]
    corrupted_ids: list[int]
    answer_id: int
    p_clean: float
    p_corrupted: float
    prob: np.ndarray  # float32 [L+1, T]

    @property
    def restored(self) -> np.ndarray:
        """(prob - p_corrupted) / (p_clean - p_corrupted): 1 = fully restored, 0 = no effect."""
        gap = self.p_clean - self.p_corrupted
        if abs(gap) < 1e-9:
            return np.zeros_like(self.prob)
        return ((self.prob - self.p_corrupted) / gap).astype(np.float32)

    def cell_patch(self, layer: int, position: int) -> Patch:
        """The intervention behind cell (lens layer, position): trace ``corrupted_ids`` with it."""
        n_layers, n_pos = self.prob.shape
        if not (0 <= layer < n_layers and 0 <= position < n_pos):
            raise InputError(
                f"cell ({layer}, {position}) is outside the sweep ({n_layers}x{n_pos})"
            )
        return residual_patch(layer, position, self.clean_ids)

    def nbytes(self) -> int:
        return int(self.prob.nbytes) + 8 * (len(self.clean_ids) + len(self.corrupted_ids))


def residual_patch(layer: int, position: int, source_ids: list[int]) -> Patch:
    """Patch h_layer (a lens layer) at ``position`` from the run on ``source_ids``."""
    point, block = resid_site(layer)
    return Patch(point=point, block=block, positions=(position,), source_ids=tuple(source_ids))


def check_pair(model: LensModel, clean: list[int], corrupted: list[int]) -> None:
    if len(clean) != len(corrupted):
        raise InputError(
            f"the clean and corrupted prompts must have the same number of tokens "
            f"({len(clean)} vs {len(corrupted)}); reword one of them"
        )
    if len(clean) < 1:
        raise InputError("the prompts are empty")
    if len(clean) > model.info.context_length:
        raise InputError(
            f"the prompts are longer than the model's context ({model.info.context_length})"
        )


def last_probs(model: LensModel, ids: torch.Tensor) -> torch.Tensor:
    """Softmax of the final logits at the last position of each row of ``ids``: [B, V]."""
    logits = model.forward(ids, last_logits_only=True).logits[:, -1, :].float()
    return torch.softmax(logits, dim=-1)


def clean_run(
    model: LensModel, clean_ids: list[int], record: Sequence[str | tuple[str, int]]
) -> tuple[torch.Tensor, SourceCache]:
    """One clean pass: its last-position probabilities [V] and a patch-source cache seeded with
    the points in ``record`` (so patches from the clean run never run it again)."""
    hooks = Hooks(model, record=record)
    with torch.no_grad(), hooks.installed():
        probs = last_probs(model, torch.tensor([clean_ids], device=model.device))[0]
    sources = SourceCache(model)
    for name, block in hooks.wanted:
        sources.put(clean_ids, name, block, hooks.values(name, block)[0])
    return probs, sources


def check_answer(probs: torch.Tensor, answer_id: int | None) -> int:
    """``answer_id``, or the top of ``probs``; a clear error outside the vocabulary."""
    if answer_id is None:
        return int(probs.argmax())
    if not 0 <= answer_id < probs.shape[0]:
        raise InputError(f"answer token id {answer_id} is outside the vocabulary")
    return int(answer_id)


@torch.no_grad()
def patched_probs(
    model: LensModel,
    corrupted_ids: list[int],
    cells: Sequence[Sequence[Patch]],
    answer_id: int,
    sources: SourceCache,
    batch_size: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """p(answer) at the last position of ``corrupted_ids`` with each cell's patches applied:
    ``batch_size`` cells per pass, one batch row each (cells may patch different points).
    ``on_progress(cells done, cells in all)`` is called after each pass."""
    if batch_size < 1:
        raise InputError("batch size must be >= 1")
    corrupted = torch.tensor([corrupted_ids], device=model.device)
    out = np.zeros(len(cells), dtype=np.float32)
    for start in range(0, len(cells), batch_size):
        rows = [list(c) for c in cells[start : start + batch_size]]
        hooks = hooks_for(bind(model, per_row=rows, sources=sources))
        with hooks.installed():
            p = last_probs(model, corrupted.expand(len(rows), -1))[:, answer_id]
        out[start : start + len(rows)] = p.float().cpu().numpy()
        if on_progress is not None:
            on_progress(start + len(rows), len(cells))
    return out


@torch.no_grad()
def patch_sweep(
    model: LensModel,
    clean_ids: list[int],
    corrupted_ids: list[int],
    answer_id: int | None = None,
    batch_size: int = 32,
) -> PatchSweep:
    """Patch the clean residual into the corrupted run at every (layer, position), batched.

    ``answer_id`` defaults to the clean run's top prediction at the last position. Each batch row
    is one cell (:func:`patched_probs`).
    """
    check_pair(model, clean_ids, corrupted_ids)
    n_blocks, n_pos = model.info.n_blocks, len(clean_ids)
    p_clean_all, sources = clean_run(model, clean_ids, [("resid_pre", 0), "resid_post"])
    answer_id = check_answer(p_clean_all, answer_id)
    corrupted = torch.tensor([corrupted_ids], device=model.device)
    p_corrupted = float(last_probs(model, corrupted)[0, answer_id])
    cells = [
        [residual_patch(layer, pos, clean_ids)]
        for layer in range(n_blocks + 1)
        for pos in range(n_pos)
    ]
    prob = patched_probs(model, corrupted_ids, cells, answer_id, sources, batch_size)
    return PatchSweep(
        clean_ids=list(clean_ids),
        corrupted_ids=list(corrupted_ids),
        answer_id=answer_id,
        p_clean=float(p_clean_all[answer_id]),
        p_corrupted=p_corrupted,
        prob=prob.reshape(n_blocks + 1, n_pos),
    )
