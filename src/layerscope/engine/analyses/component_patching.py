"""Component patching: which heads, attention layers, MLPs and residual cells carry the answer.

The residual sweep of :mod:`~layerscope.engine.analyses.patching`, extended to the components
that write into the residual stream. Each cell copies one component's output from the clean run
into the corrupted one (an ordinary :class:`~layerscope.engine.interventions.Patch`) and measures
p(answer) at the last position:

- ``resid`` [L+1, T]: the residual stream h_l at one position;
- ``attn_out`` [L, T], ``mlp_out`` [L, T]: one block's attention / MLP output at one position;
- ``head_out`` [L, H]: one head's output (before W_O) at every position.

``restored`` = (p - p_corrupted) / (p_clean - p_corrupted): 1 = the clean answer fully back, 0 =
no effect. All cells go through the same batched passes as the residual sweep
(:func:`~layerscope.engine.analyses.patching.patched_probs`, 32 cells a pass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from layerscope.engine.analyses.patching import (
    check_answer,
    check_pair,
    clean_run,
    last_probs,
    patched_probs,
    residual_patch,
)
from layerscope.engine.interventions import Patch
from layerscope.errors import InputError
from layerscope.models.base import LensModel

COMPONENTS = ("resid", "attn_out", "mlp_out", "head_out")


@dataclass(frozen=True)
class ComponentSweep:
    """p(answer) with each component patched from the clean run, per component kind."""

    clean_ids: list[int]
    corrupted_ids: list[int]
    answer_id: int
    p_clean: float
    p_corrupted: float
    prob: dict[str, np.ndarray]  # float32: resid [L+1, T], attn_out/mlp_out [L, T], head_out [L, H]

    @property
    def restored(self) -> dict[str, np.ndarray]:
        """Restored fraction per component kind (same shapes as ``prob``; zeros if the clean and
        corrupted runs give the answer the same probability)."""
        gap = self.p_clean - self.p_corrupted
        if abs(gap) < 1e-9:
            return {k: np.zeros_like(v) for k, v in self.prob.items()}
        return {k: ((v - self.p_corrupted) / gap).astype(np.float32) for k, v in self.prob.items()}

    def cell_patch(self, component: str, block_or_layer: int, index: int) -> Patch:
        """The patch behind one cell: ``resid`` (lens layer, position), ``attn_out``/``mlp_out``
        (block, position), ``head_out`` (block, head). Trace ``corrupted_ids`` with it."""
        if component not in self.prob:
            raise InputError(f"unknown component {component!r}; use one of {', '.join(COMPONENTS)}")
        rows, cols = self.prob[component].shape
        if not (0 <= block_or_layer < rows and 0 <= index < cols):
            raise InputError(
                f"cell ({block_or_layer}, {index}) is outside the {component} sweep ({rows}x{cols})"
            )
        return component_patch(component, block_or_layer, index, self.clean_ids)

    def nbytes(self) -> int:
        arrays = sum(int(v.nbytes) for v in self.prob.values())
        return arrays + 8 * (len(self.clean_ids) + len(self.corrupted_ids))


def component_patch(component: str, block_or_layer: int, index: int, source: list[int]) -> Patch:
    """The :class:`Patch` of one component cell from the run on ``source``."""
    src = tuple(source)
    if component == "resid":
        return residual_patch(block_or_layer, index, list(source))
    if component == "head_out":
        return Patch(point="head_out", block=block_or_layer, heads=(index,), source_ids=src)
    if component in ("attn_out", "mlp_out"):
        return Patch(point=component, block=block_or_layer, positions=(index,), source_ids=src)
    raise InputError(f"unknown component {component!r}; use one of {', '.join(COMPONENTS)}")


@torch.no_grad()
def component_patch_sweep(
    model: LensModel,
    clean_ids: list[int],
    corrupted_ids: list[int],
    answer_id: int | None = None,
    components: tuple[str, ...] = COMPONENTS,
    batch_size: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
    skip_shared_prefix: bool = True,
) -> ComponentSweep:
    """Patch every cell of every component kind in ``components`` from the clean run into the
    corrupted one. ``answer_id`` defaults to the clean run's top prediction;
    ``on_progress(cells done, cells in all)`` follows the passes.

    With ``skip_shared_prefix``, per-position cells before the first token where the prompts
    differ are not run: a causal model computes the same values there in both runs, so patching
    them leaves p_corrupted (exactly, up to rounding). This saves most of the work when the
    prompts differ late.
    """
    check_pair(model, clean_ids, corrupted_ids)
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown or not components:
        raise InputError(f"unknown components {unknown}; use some of {', '.join(COMPONENTS)}")
    info = model.info
    n_pos = len(clean_ids)
    shapes = {
        "resid": (info.n_blocks + 1, n_pos),
        "attn_out": (info.n_blocks, n_pos),
        "mlp_out": (info.n_blocks, n_pos),
        "head_out": (info.n_blocks, info.n_heads),
    }
    record: list = []
    if "resid" in components:
        record += [("resid_pre", 0), "resid_post"]
    record += [c for c in components if c != "resid"]
    p_clean_all, sources = clean_run(model, clean_ids, record)
    answer_id = check_answer(p_clean_all, answer_id)
    corrupted = torch.tensor([corrupted_ids], device=model.device)
    p_corrupted = float(last_probs(model, corrupted)[0, answer_id])
    first = 0
    if skip_shared_prefix:
        differ = [
            t for t, (a, b) in enumerate(zip(clean_ids, corrupted_ids, strict=True)) if a != b
        ]
        first = differ[0] if differ else n_pos
    prob = {c: np.full(shapes[c], p_corrupted, dtype=np.float32) for c in components}
    where: list[tuple[str, int, int]] = []
    for comp in components:
        rows, cols = shapes[comp]
        start = 0 if comp == "head_out" else first  # a head's cell covers every position
        where += [(comp, r, c) for r in range(rows) for c in range(start, cols)]
    cells = [[component_patch(comp, r, c, clean_ids)] for comp, r, c in where]
    probs = patched_probs(model, corrupted_ids, cells, answer_id, sources, batch_size, on_progress)
    for (comp, r, c), p in zip(where, probs, strict=True):
        prob[comp][r, c] = p
    return ComponentSweep(
        clean_ids=list(clean_ids),
        corrupted_ids=list(corrupted_ids),
        answer_id=answer_id,
        p_clean=float(p_clean_all[answer_id]),
        p_corrupted=p_corrupted,
        prob=prob,
    )
