"""Interventions as data: small validated, serialisable edits of one forward pass that compose.

Each names a hook point (:data:`layerscope.models.base.HOOK_POINTS`), a block, optionally the
positions it touches (None: every position, generated ones included) and, at ``head_out``, the
heads. A list of them is bound to a model (:func:`bind`) and becomes one edit for the hook
installer; a list applies in order, so two at the same point compose.

- :class:`Patch` — the value the model computes at the same point on another input
  (``source_ids``, position for position): activation patching.
- :class:`Ablate` — zero, or the mean over the prompt's positions (computed in the first pass).
- :class:`Steer` — add ``scale * vector``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from layerscope.engine.hooks import Edit, Hooks, Point
from layerscope.errors import InputError
from layerscope.models.base import LensModel

PointName = Literal[
    "resid_pre", "head_out", "attn_out", "resid_mid", "mlp_post", "mlp_out", "resid_post"
]
MAX_POSITIONS = 4096


class _Intervention(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    point: PointName
    block: int = Field(ge=0)
    positions: tuple[Annotated[int, Field(ge=0)], ...] | None = Field(
        None, min_length=1, max_length=MAX_POSITIONS
    )
    heads: tuple[Annotated[int, Field(ge=0)], ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _heads_need_head_out(self):
        if self.heads is not None and self.point != "head_out":
            raise ValueError("heads can only be chosen at the head_out point")
        return self

    @property
    def site(self) -> Point:
        return (self.point, self.block)

    def check(self, model: LensModel) -> None:
        """A clear error if this does not fit ``model``."""
        info = model.info
        if self.block >= info.n_blocks:
            raise InputError(
                f"block {self.block} is outside the model's blocks 0..{info.n_blocks - 1}"
            )
        if self.heads is not None and max(self.heads) >= info.n_heads:
            raise InputError(f"head {max(self.heads)} is outside 0..{info.n_heads - 1}")

    def describe(self) -> str:
        """One line for people, e.g. ``ablate head_out[3] heads 1,2``."""
        where = f"{self.point}[{self.block}]"
        if self.heads is not None:
            where += " heads " + ",".join(map(str, self.heads))
        if self.positions is not None:
            where += " at " + ",".join(map(str, self.positions))
        return f"{self.kind} {where}"  # type: ignore[attr-defined]


class Patch(_Intervention):
    """Replace the value with the one computed at the same point and position on ``source_ids``."""

    kind: Literal["patch"] = "patch"
    source_ids: tuple[Annotated[int, Field(ge=0)], ...] = Field(min_length=1, max_length=100_000)

    def check(self, model: LensModel) -> None:
        super().check(model)
        vocab = model.info.vocab_size
        if max(self.source_ids) >= vocab:
            raise InputError(f"source token id {max(self.source_ids)} is outside the vocabulary")
        if len(self.source_ids) > model.info.context_length:
            raise InputError("the patch source is longer than the model's context")
        if self.positions is not None and max(self.positions) >= len(self.source_ids):
            raise InputError(
                f"patch position {max(self.positions)} is past the end of its source "
                f"({len(self.source_ids)} tokens)"
            )


class Ablate(_Intervention):
    """Set the value to zero, or to its mean over the prompt's positions."""

    kind: Literal["ablate"] = "ablate"
    mode: Literal["zero", "mean"] = "zero"


class Steer(_Intervention):
    """Add ``scale * vector`` (the point's last dimension: d_model, d_mlp, or d_head per head)."""

    kind: Literal["steer"] = "steer"
    vector: tuple[float, ...] = Field(min_length=1, max_length=65_536)
    scale: float = Field(1.0, ge=-1e4, le=1e4)

    def check(self, model: LensModel) -> None:
        super().check(model)
        want = point_width(model, self.point)
        if len(self.vector) != want:
            raise InputError(
                f"a steering vector at {self.point} needs {want} numbers; got {len(self.vector)}"
            )


Intervention = Annotated[Patch | Ablate | Steer, Field(discriminator="kind")]
intervention_list: TypeAdapter[list[Intervention]] = TypeAdapter(list[Intervention])


def resid_site(layer: int) -> Point:
    """The hook point holding lens layer ``layer``'s residual stream: h_0 is ``resid_pre`` of
    block 0, h_l (l >= 1) is ``resid_post`` of block l - 1."""
    if layer < 0:
        raise InputError(f"lens layer {layer} is negative")
    return ("resid_pre", 0) if layer == 0 else ("resid_post", layer - 1)


def point_width(model: LensModel, point: str) -> int:
    """Size of the last dimension of ``point``'s values."""
    info = model.info
    return {"head_out": info.d_head, "mlp_post": info.d_mlp}.get(point, info.d_model)


class SourceCache:
    """Activations of patch sources, keyed by (source ids, point, block), computed on demand."""

    def __init__(self, model: LensModel) -> None:
        self.model = model
        self._values: dict[tuple[tuple[int, ...], str, int], torch.Tensor] = {}

    def need(self, patches: Sequence[Patch]) -> None:
        """Run each source once for whatever of its points is not cached yet."""
        missing: dict[tuple[int, ...], set[Point]] = {}
        for p in patches:
            if (p.source_ids, *p.site) not in self._values:
                missing.setdefault(p.source_ids, set()).add(p.site)
        for ids, sites in missing.items():
            hooks = Hooks(self.model, record=sites)
            x = torch.tensor([list(ids)], device=self.model.device)
            with hooks.installed():
                self.model.forward(x, last_logits_only=True)
            for name, block in sites:
                self._values[(ids, name, block)] = hooks.values(name, block)[0]

    def get(self, patch: Patch) -> torch.Tensor:
        """The source's values [T_source, ...] at the patch's point."""
        return self._values[(patch.source_ids, *patch.site)]

    def put(self, ids: Sequence[int], name: str, block: int, value: torch.Tensor) -> None:
        """Seed the cache with values already recorded (``value`` [T, ...], batch row removed)."""
        self._values[(tuple(ids), name, block)] = value


class Bound:
    """Interventions bound to a model: ``edit`` for :class:`Hooks`, applied at ``sites``.

    ``rows[i]`` lists what batch row i gets; a single list applies to every row.
    """

    def __init__(
        self,
        model: LensModel,
        rows: Sequence[Sequence[_Intervention]],
        sources: SourceCache,
        broadcast: bool,
    ) -> None:
        self.model = model
        self.rows = [list(r) for r in rows]
        self.sources = sources
        self.broadcast = broadcast
        self.sites: set[Point] = {i.site for r in self.rows for i in r}
        self._means: dict[tuple[int, int], torch.Tensor] = {}  # (row, index in row) -> mean

    def edit(self, name: str, block: int, x: torch.Tensor, positions: range) -> torch.Tensor | None:
        out = None
        row_sets = [(None, self.rows[0])] if self.broadcast else list(enumerate(self.rows))
        for row, items in row_sets:
            for k, iv in enumerate(items):
                if iv.site != (name, block):
                    continue
                local = _local(iv, positions)
                if local is None:
                    continue
                if out is None:
                    out = x.clone()
                rows = slice(None) if row is None else slice(row, row + 1)
                self._apply(iv, out, rows, local, positions, (row or 0, k))
        return out

    def _apply(self, iv, out, rows, local, positions, key) -> None:
        """Edit ``out`` [B, T_new, ...] in place at batch ``rows`` and time indices ``local``."""
        idx = torch.as_tensor(local, device=out.device)
        if iv.heads is None:
            where: tuple = (rows, idx)
            pick = slice(None)
        else:
            heads = torch.as_tensor(iv.heads, device=out.device)
            where = (rows, idx[:, None], heads)
            pick = heads
        if isinstance(iv, Patch):
            src = self.sources.get(iv)
            absolute = torch.as_tensor([positions[i] for i in local], device=src.device)
            value = src[absolute].to(out.device, out.dtype)  # [n, ...]
            out[where] = value if iv.heads is None else value[:, pick]
        elif isinstance(iv, Ablate) and iv.mode == "zero":
            out[where] = 0
        elif isinstance(iv, Ablate):
            mean = self._means.get(key)
            if mean is None:  # the first pass holds the prompt
                mean = self._means[key] = out[rows].mean(dim=1, keepdim=True)
            out[where] = mean if iv.heads is None else mean[:, :, pick]
        else:
            out[where] += torch.tensor(iv.vector, dtype=out.dtype, device=out.device) * iv.scale


def _local(iv: _Intervention, positions: range) -> list[int] | None:
    """Indices into this pass's time axis that ``iv`` touches (None if none)."""
    wanted = iv.positions
    if wanted is None:
        if isinstance(iv, Patch):  # every position the source has
            limit = len(iv.source_ids)
            local = [i for i, p in enumerate(positions) if p < limit]
        else:
            local = list(range(len(positions)))
    else:
        local = [p - positions.start for p in wanted if p in positions]
    return local or None


def bind(
    model: LensModel,
    interventions: Sequence[_Intervention] = (),
    *,
    per_row: Sequence[Sequence[_Intervention]] | None = None,
    sources: SourceCache | None = None,
) -> Bound:
    """Validate ``interventions`` against ``model`` and bind them (``per_row``: one list a row).

    Patch sources run here, once each (``sources`` may hold them from an earlier bind).
    """
    rows = [list(interventions)] if per_row is None else [list(r) for r in per_row]
    for r in rows:
        for iv in r:
            iv.check(model)
    sources = sources or SourceCache(model)
    sources.need([iv for r in rows for iv in r if isinstance(iv, Patch)])
    return Bound(model, rows, sources, broadcast=per_row is None)


def hooks_for(bound: Bound, record=(), **kwargs) -> Hooks:
    """A :class:`Hooks` that records ``record`` and applies ``bound`` where it acts."""
    edit: Edit | None = bound.edit if bound.sites else None
    return Hooks(bound.model, record=record, edit=edit, edit_at=bound.sites, **kwargs)
