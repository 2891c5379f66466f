"""Activation patching and early-exit decoding.

Patching: run a *clean* and a *corrupted* prompt of the same token count; for every lens layer l
and position t, run the corrupted prompt again with ``h_l[t]`` replaced by the clean run's, and
measure the probability of the clean answer at the last position. Cells that restore it show where
the information that tells the two prompts apart lives.

Early exit: greedy decoding that reads the next token from the lens at layer k instead of the final
layer, i.e. what the first k blocks alone would write.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from layerscope.engine.capture import Edit
from layerscope.engine.lens import LayerCallback
from layerscope.engine.trace import Trace, run_trace
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
    clean_resid: torch.Tensor  # [L+1, T, d], kept to replay single patched runs

    @property
    def restored(self) -> np.ndarray:
        """(prob - p_corrupted) / (p_clean - p_corrupted): 1 = fully restored, 0 = no effect."""
        gap = self.p_clean - self.p_corrupted
        if abs(gap) < 1e-9:
            return np.zeros_like(self.prob)
        return ((self.prob - self.p_corrupted) / gap).astype(np.float32)

    def nbytes(self) -> int:
        return int(self.prob.nbytes + self.clean_resid.numel() * self.clean_resid.element_size())


def _hidden_in(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _with_hidden_in(args: tuple, kwargs: dict, h: torch.Tensor) -> tuple[tuple, dict]:
    if args:
        return (h, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": h}


@contextmanager
def _residual_patch(
    model: LensModel, layer: int, rows: torch.Tensor, positions: torch.Tensor, values: torch.Tensor
) -> Iterator[None]:
    """While active, ``h_layer[rows[i], positions[i]] = values[i]`` in every forward pass."""
    n_blocks = len(model.blocks)

    def put(h: torch.Tensor) -> torch.Tensor:
        h = h.clone()
        h[rows, positions] = values.to(h.dtype)
        return h

    if layer < n_blocks:

        def pre(module, args, kwargs):
            return _with_hidden_in(args, kwargs, put(_hidden_in(args, kwargs)))

        handle = model.blocks[layer].register_forward_pre_hook(pre, with_kwargs=True)
    else:

        def post(module, args, output):
            if isinstance(output, tuple):
                return (put(output[0]), *output[1:])
            return put(output)

        handle = model.blocks[n_blocks - 1].register_forward_hook(post)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def _record_residuals(model: LensModel, out: list[torch.Tensor]) -> Iterator[None]:
    """Append h_0..h_L (batch row 0) of each forward pass to ``out``, in layer order."""
    handles = []
    for i, block in enumerate(model.blocks):

        def pre(module, args, kwargs):
            out.append(_hidden_in(args, kwargs)[0].detach().float().cpu())

        handles.append(block.register_forward_pre_hook(pre, with_kwargs=True))
        if i == len(model.blocks) - 1:

            def post(module, args, output):
                h = output[0] if isinstance(output, tuple) else output
                out.append(h[0].detach().float().cpu())

            handles.append(block.register_forward_hook(post))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _last_probs(model: LensModel, ids: torch.Tensor) -> torch.Tensor:
    logits = model.forward(ids).logits[:, -1, :].float()
    return torch.softmax(logits, dim=-1)


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


@torch.no_grad()
def patch_sweep(
    model: LensModel,
    clean_ids: list[int],
    corrupted_ids: list[int],
    answer_id: int | None = None,
    batch_size: int = 32,
) -> PatchSweep:
    """Patch the clean residual into the corrupted run at every (layer, position), batched by layer.

    ``answer_id`` defaults to the clean run's top prediction at the last position.
    """
    _check_pair(model, clean_ids, corrupted_ids)
    dev = model.device
    clean = torch.tensor([clean_ids], device=dev)
    corrupted = torch.tensor([corrupted_ids], device=dev)
    resid: list[torch.Tensor] = []
    with _record_residuals(model, resid):
        p_clean_all = _last_probs(model, clean)[0]
    clean_resid = torch.stack(resid)  # [L+1, T, d]
    if answer_id is None:
        answer_id = int(p_clean_all.argmax())
    elif not 0 <= answer_id < p_clean_all.shape[0]:
        raise InputError(f"answer token id {answer_id} is outside the vocabulary")
    p_corrupted = float(_last_probs(model, corrupted)[0, answer_id])
    n_layers, n_pos = clean_resid.shape[0], clean_resid.shape[1]
    prob = np.zeros((n_layers, n_pos), dtype=np.float32)
    for layer in range(n_layers):
        for start in range(0, n_pos, batch_size):
            pos = torch.arange(start, min(n_pos, start + batch_size), device=dev)
            rows = torch.arange(len(pos), device=dev)
            values = clean_resid[layer, pos.cpu()].to(dev)
            batch = corrupted.expand(len(pos), -1)
            with _residual_patch(model, layer, rows, pos, values):
                p = _last_probs(model, batch)[:, answer_id]
            prob[layer, start : start + len(pos)] = p.float().cpu().numpy()
    return PatchSweep(
        clean_ids=list(clean_ids),
        corrupted_ids=list(corrupted_ids),
        answer_id=answer_id,
        p_clean=float(p_clean_all[answer_id]),
        p_corrupted=p_corrupted,
        prob=prob,
        clean_resid=clean_resid,
    )


def patch_edit(sweep: PatchSweep, layer: int, position: int) -> Edit:
    """An ``edit`` for ``engine.capture`` that applies one cell of a sweep to a single run."""
    n_layers, n_pos = sweep.prob.shape
    if not (0 <= layer < n_layers and 0 <= position < n_pos):
        raise InputError(f"cell ({layer}, {position}) is outside the sweep ({n_layers}x{n_pos})")
    value = sweep.clean_resid[layer, position]
    # h_0 is block 0's input; h_l (l >= 1) is block l-1's output, so the capture records the patch
    point, at = ("resid_pre", 0) if layer == 0 else ("resid_post", layer - 1)

    def edit(name: str, lay: int, tensor: torch.Tensor) -> torch.Tensor | None:
        if name != point or lay != at:
            return None
        out = tensor.clone()
        out[:, position] = value.to(device=out.device, dtype=out.dtype)
        return out

    return edit


def patched_trace(
    model: LensModel,
    sweep: PatchSweep,
    layer: int,
    position: int,
    *,
    lens_top_k: int = 10,
    on_layer: LayerCallback | None = None,
) -> Trace:
    """The corrupted prompt traced with one cell of ``sweep`` patched, ready for the scrubber."""
    return run_trace(
        model,
        ids=sweep.corrupted_ids,
        lens_top_k=lens_top_k,
        edit=patch_edit(sweep, layer, position),
        extra_settings={"patched": [layer, position], "answer_id": sweep.answer_id},
        on_layer=on_layer,
    )


class _Exit(Exception):
    def __init__(self, h: torch.Tensor) -> None:
        self.h = h


@torch.no_grad()
def early_exit_generate(
    model: LensModel, ids: list[int], layer: int, n: int, stop_ids: frozenset[int] = frozenset()
) -> list[int]:
    """Greedy tokens read from the layer-``layer`` lens; blocks past ``layer`` are never run."""
    n_blocks = len(model.blocks)
    if not 0 <= layer <= n_blocks:
        raise InputError(f"layer must be within 0..{n_blocks}; got {layer}")
    if len(ids) + n > model.info.context_length:
        raise InputError("the prompt plus the tokens to generate exceed the model's context")
    seq = list(ids)
    out: list[int] = []

    def stop(module, args, kwargs):
        raise _Exit(_hidden_in(args, kwargs)[0, -1])

    for _ in range(n):
        x = torch.tensor([seq], device=model.device)
        if layer == n_blocks:
            logits = model.forward(x).logits[0, -1]
        else:
            handle = model.blocks[layer].register_forward_pre_hook(stop, with_kwargs=True)
            try:
                model.forward(x)
                raise RuntimeError("early exit hook did not fire")
            except _Exit as e:
                logits = model.unembed(model.final_norm(e.h[None]))[0]
            finally:
                handle.remove()
        tok = int(logits.float().argmax())
        out.append(tok)
        seq.append(tok)
        if tok in stop_ids:
            break
    return out
