"""The one hook installer: record and/or edit any hook points, for any batch size, always removed.

Hook points are named as in :data:`layerscope.models.base.HOOK_POINTS` and addressed by block.
Within a block a pass reaches them in the order resid_pre, head_out, attn_out (then the derived
resid_mid), mlp_post, mlp_out, resid_post. One :class:`Hooks` object is installed around one or
more forward passes (prefill, then KV-cached steps): ``offset`` tells it the absolute position of
the first token of the next pass, so an edit can address positions across generation steps.

An edit is ``edit(point, block, value, positions) -> tensor | None``: ``value`` is the batched
tensor at that point ([B, T_new, ...]), ``positions`` the absolute positions of its time axis; it
returns a replacement of the same shape, or None to keep the value. Recorded values are what the
pass went on with (after edits), one tensor per pass per (point, block).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from layerscope.errors import InputError
from layerscope.models.base import HOOK_POINTS, MODULE_POINTS, LensModel, StopForward

Edit = Callable[[str, int, torch.Tensor, range], torch.Tensor | None]
Point = tuple[str, int]  # (point name, block)


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, tuple | list) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    if isinstance(x, tuple):
        return (new, *x[1:])
    if isinstance(x, list):
        return [new, *x[1:]]
    return new


class Hooks:
    """Records ``record`` and applies ``edit`` while :meth:`installed`.

    ``record`` holds point names (every block) or ``(name, block)`` pairs; ``edit_at`` the points
    ``edit`` may change (None: every point of every block). ``stop_before`` ends
    every pass at the input of that block with :class:`StopForward` whose value is the residual
    stream there (early exit: later blocks never run). With ``grad`` the recorded tensors keep
    their autograd history.
    """

    def __init__(
        self,
        model: LensModel,
        record: Iterable[str | Point] = (),
        edit: Edit | None = None,
        *,
        edit_at: Iterable[str | Point] | None = None,
        stop_before: int | None = None,
        grad: bool = False,
    ) -> None:
        self.model = model
        self.edit = edit
        self.grad = grad
        self.wanted = self._points(record)
        if edit is None:
            self.editable: set[Point] = set()
        else:
            self.editable = self._points(HOOK_POINTS if edit_at is None else edit_at)
        n_blocks = model.info.n_blocks
        if stop_before is not None and not 0 <= stop_before < n_blocks:
            raise InputError(f"stop_before must be a block in 0..{n_blocks - 1}")
        self.stop_before = stop_before
        self.records: dict[Point, list[torch.Tensor]] = {p: [] for p in self.wanted}
        self.offset = 0  # absolute position of the next pass's first token
        self._pre: dict[int, torch.Tensor] = {}  # this pass's resid_pre per block (for resid_mid)
        n_heads, d_head = model.info.n_heads, model.info.d_head
        self._head_shape = (n_heads, d_head)

    def _points(self, items: Iterable[str | Point]) -> set[Point]:
        out: set[Point] = set()
        for item in items:
            if isinstance(item, str):
                name, blocks = item, range(self.model.info.n_blocks)
            else:
                name, blocks = item[0], [item[1]]
            check_point(self.model, name, *blocks)
            out.update((name, b) for b in blocks)
        return out

    # ------------------------------------------------------------------ results
    def values(self, name: str, block: int) -> torch.Tensor:
        """The recorded value of (name, block) over every pass so far, along time: [B, T, ...]."""
        parts = self.records[(name, block)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def stacked(self, name: str) -> torch.Tensor:
        """(name) of every block, recorded over every pass: [blocks, B, T, ...]."""
        return torch.stack([self.values(name, b) for b in range(self.model.info.n_blocks)])

    # ------------------------------------------------------------------ installing
    @contextmanager
    def installed(self) -> Iterator[Hooks]:
        """Attach the hooks; they are removed on exit, also when the pass raises."""
        handles = []
        try:
            for block in range(self.model.info.n_blocks):
                sites = self.model.hook_sites(block)
                for name in MODULE_POINTS:
                    if self._needs(name, block):
                        handles.append(self._attach(sites[name], name, block))
            yield self
        finally:
            for h in handles:
                h.remove()
            self._pre.clear()

    def _needs(self, name: str, block: int) -> bool:
        """Whether (name, block) needs a hook: recorded, edited, or feeding one that is."""
        names = {name}
        if name in ("resid_pre", "attn_out"):  # resid_mid is made of both
            names.add("resid_mid")
        points = {(n, block) for n in names}
        if name == "resid_pre" and block == self.stop_before:
            return True
        return bool(points & self.wanted) or bool(points & self.editable)

    def _attach(self, site, name: str, block: int):
        if site.io == "output":

            def post(module, args, output):
                x = _first(output)
                new = self._visit(name, block, x)
                return output if new is x else _replace_first(output, new)

            return site.module.register_forward_hook(post)

        kwarg = site.kwarg

        def pre(module, args, kwargs):
            from_args = bool(args)
            x = args[0] if from_args else kwargs[kwarg]
            new = self._visit(name, block, x)
            if new is x:
                return None
            if from_args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, kwarg: new}

        return site.module.register_forward_pre_hook(pre, with_kwargs=True)

    # ------------------------------------------------------------------ one value
    def _visit(self, name: str, block: int, x: torch.Tensor) -> torch.Tensor:
        """Edit and record the value of (name, block); returns the tensor the pass goes on with."""
        if name == "head_out":
            b, t, _ = x.shape
            view = x.view(b, t, *self._head_shape)
            heads = self._apply(name, block, view)
            self._keep(name, block, heads, clone=heads is view)
            return x if heads is view else heads.reshape(b, t, -1)
        if name == "attn_out":
            x = self._apply(name, block, x)
            self._keep(name, block, x)
            pre = self._pre.get(block)
            mid_point = ("resid_mid", block)
            if pre is not None and (mid_point in self.wanted or mid_point in self.editable):
                mid = pre + x
                new_mid = self._apply("resid_mid", block, mid)
                if new_mid is not mid:  # resid_mid is edited through attention's contribution
                    x = x + (new_mid - mid)
                self._keep("resid_mid", block, new_mid)
            return x
        x = self._apply(name, block, x)
        self._keep(name, block, x)
        if name == "resid_pre":
            self._pre[block] = x
            if block == self.stop_before:
                raise StopForward(x)
        return x

    def _apply(self, name: str, block: int, x: torch.Tensor) -> torch.Tensor:
        if self.edit is None or (name, block) not in self.editable:
            return x
        positions = range(self.offset, self.offset + x.shape[1])
        new = self.edit(name, block, x, positions)
        if new is None:
            return x
        if new.shape != x.shape:
            raise ValueError(f"edit at {name}[{block}] changed shape {x.shape} -> {new.shape}")
        return new.to(x.dtype)

    def _keep(self, name: str, block: int, x: torch.Tensor, clone: bool = False) -> None:
        store = self.records.get((name, block))
        if store is None:
            return
        if not self.grad:
            x = x.detach()
            if clone:  # a view of a module's input buffer: keep a copy of its own
                x = x.clone()
        store.append(x)


def check_point(model: LensModel, name: str, *blocks: int) -> None:
    """A clear error for an unknown hook point name or a block outside the model."""
    if name not in HOOK_POINTS:
        raise InputError(f"unknown hook point {name!r}; use one of {', '.join(HOOK_POINTS)}")
    n_blocks = model.info.n_blocks
    bad = [b for b in blocks if not 0 <= b < n_blocks]
    if bad:
        raise InputError(f"block {bad[0]} is outside the model's blocks 0..{n_blocks - 1}")
