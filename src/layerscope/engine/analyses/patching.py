"""Activation patching sweeps, built on :class:`~layerscope.engine.interventions.Patch`.

Run a *clean* and a *corrupted* prompt of the same token count; for every lens layer l and position
t, run the corrupted prompt again with ``h_l[t]`` patched from the clean run and measure the
probability of the clean answer at the last position. Cells that restore it show where the
information that tells the two prompts apart lives. One cell opened as a run is an ordinary trace
of the corrupted prompt with :meth:`PatchSweep.cell_patch` attached.
"""

from __future__ import annotations

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


def _check_pair(model: LensModel, clean: list[int], corrupted: list[int]) -> None:
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


def _last_probs(model: LensModel, ids: torch.Tensor) -> torch.Tensor:
    logits = model.forward(ids, last_logits_only=True).logits[:, -1, :].float()
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def patch_sweep(
    model: LensModel,
    clean_ids: list[int],
    corrupted_ids: list[int],
    answer_id: int | None = None,
    batch_size: int = 32,
) -> PatchSweep:
    """Patch the clean residual into the corrupted run at every (layer, position), batched by layer.

    ``answer_id`` defaults to the clean run's top prediction at the last position. Each batch row
    is one cell: the rows of a pass differ only in the position they patch.
    """
    _check_pair(model, clean_ids, corrupted_ids)
    dev = model.device
    n_blocks, n_pos = model.info.n_blocks, len(clean_ids)
    clean = torch.tensor([clean_ids], device=dev)
    corrupted = torch.tensor([corrupted_ids], device=dev)
    # The clean run records the residual stream once and seeds the patch sources with it.
    record = Hooks(model, record=[("resid_pre", 0), "resid_post"])
    with record.installed():
        p_clean_all = _last_probs(model, clean)[0]
    sources = SourceCache(model)
    for name, block in record.wanted:
        sources.put(clean_ids, name, block, record.values(name, block)[0])
    if answer_id is None:
        answer_id = int(p_clean_all.argmax())
    elif not 0 <= answer_id < p_clean_all.shape[0]:
        raise InputError(f"answer token id {answer_id} is outside the vocabulary")
    p_corrupted = float(_last_probs(model, corrupted)[0, answer_id])
    prob = np.zeros((n_blocks + 1, n_pos), dtype=np.float32)
    for layer in range(n_blocks + 1):
        for start in range(0, n_pos, batch_size):
            cells = range(start, min(n_pos, start + batch_size))
            rows = [[residual_patch(layer, pos, clean_ids)] for pos in cells]
            hooks = hooks_for(bind(model, per_row=rows, sources=sources))
            with hooks.installed():
                p = _last_probs(model, corrupted.expand(len(cells), -1))[:, answer_id]
            prob[layer, start : start + len(cells)] = p.float().cpu().numpy()
    return PatchSweep(
        clean_ids=list(clean_ids),
        corrupted_ids=list(corrupted_ids),
        answer_id=answer_id,
        p_clean=float(p_clean_all[answer_id]),
        p_corrupted=p_corrupted,
        prob=prob,
    )
