"""Interventions as data: small validated, serialisable edits of one forward pass that compose.

An intervention expands into atomic edits (:meth:`edits`): ``(point, block, heads)`` triples at the
hook points of :data:`layerscope.models.base.HOOK_POINTS`, plus the positions it touches (None:
every position, generated ones included). A list of them is bound to a model (:func:`bind`) and
becomes one edit for the hook installer; a list applies in order, so two at the same point compose.

- :class:`Patch` — the value the model computes at the same point on another input
  (``source_ids``, position for position): activation patching.
- :class:`Ablate` — switch off heads, attention layers, MLPs or whole blocks (component form), or
  one point of one block (low-level form): zero, or a mean (over the prompt's positions, or over
  a reference text).
- :class:`Steer` — add ``strength * vector`` to the residual stream of a lens layer (or to any
  point): one vector at every position, a matrix aligned at the start of the prompt (ActAdd), or
  one vector from the prompt's last position on (CAA).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from layerscope.engine.hooks import Edit, Hooks, Point
from layerscope.errors import InputError
from layerscope.models.base import LensModel

PointName = Literal[
    "resid_pre", "head_out", "attn_out", "resid_mid", "mlp_post", "mlp_out", "resid_post"
]
MAX_POSITIONS = 4096
MAX_STRENGTH = 1e4

Index = Annotated[int, Field(ge=0)]
HeadPair = tuple[Index, Index]  # (block, head)
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positions = Annotated[tuple[Index, ...] | None, Field(min_length=1, max_length=MAX_POSITIONS)]
TokenIds = Annotated[tuple[Index, ...], Field(min_length=1, max_length=100_000)]
AtomicEdit = tuple[str, int, tuple[int, ...] | None]  # (point, block, heads at head_out or None)


class _Intervention(BaseModel):
    """What every intervention has: the positions it touches, its atomic edits, its checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    positions: Positions = None

    def edits(self, model: LensModel) -> list[AtomicEdit]:
        """The (point, block, heads) edits this intervention makes on ``model``."""
        raise NotImplementedError

    def check(self, model: LensModel) -> None:
        """A clear error if this does not fit ``model``."""
        for _, block, heads in self.edits(model):
            _check_block_heads(model, block, heads)

    def describe(self) -> str:
        """One line for people, e.g. ``ablate head_out[3] heads 1,2``."""
        raise NotImplementedError


class _AtPoint(_Intervention):
    """The low-level form: one hook point of one block (at ``head_out``, optionally some heads)."""

    point: PointName
    block: Index
    heads: tuple[Index, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _heads_need_head_out(self):
        if self.heads is not None and self.point != "head_out":
            raise ValueError("heads can only be chosen at the head_out point")
        return self

    @property
    def site(self) -> Point:
        return (self.point, self.block)

    def edits(self, model: LensModel) -> list[AtomicEdit]:
        return [(self.point, self.block, self.heads)]

    def describe(self) -> str:
        return f"{self.kind} {_where(self.point, self.block, self.heads, self.positions)}"  # type: ignore[attr-defined]


class Patch(_AtPoint):
    """Replace the value with the one computed at the same point and position on ``source_ids``."""

    kind: Literal["patch"] = "patch"
    source_ids: TokenIds

    def check(self, model: LensModel) -> None:
        super().check(model)
        _check_ids(model, self.source_ids, "patch source")
        if self.positions is not None and max(self.positions) >= len(self.source_ids):
            raise InputError(
                f"patch position {max(self.positions)} is past the end of its source "
                f"({len(self.source_ids)} tokens)"
            )


class Ablate(_Intervention):
    """Switch components off: zero them, or replace them by their mean.

    Component form (several sites at once; ``block`` is the block index 0..L-1):

    - ``heads=[(block, head), ...]`` — that head's slice of ``head_out`` (its output before the
      output projection W_O); zeroing every head of a block leaves only W_O's bias, if any;
    - ``attn=[block, ...]`` — the attention layer's whole addition to the stream (``attn_out``);
    - ``mlps=[block, ...]`` — the MLP's addition (``mlp_out``);
    - ``layers=[block, ...]`` — both, so in zero mode the block is the identity on the stream.

    Low-level form: ``point`` and ``block`` (and at ``head_out`` optionally ``heads=(h, ...)``).

    ``mode="zero"`` sets the value to 0. ``mode="mean"`` replaces it by a mean over positions:
    without ``reference_ids``, the mean over the prompt's positions of the value this run computes
    there (after any edit upstream of it), taken in the prompt's pass and reused for generated
    tokens; with ``reference_ids``, the mean over every position of the value the clean model
    computes there on that reference text. ``positions`` limits where the value is replaced.
    """

    kind: Literal["ablate"] = "ablate"
    point: PointName | None = None
    block: Index | None = None
    heads: tuple[HeadPair, ...] | tuple[Index, ...] | None = Field(None, min_length=1)
    attn: tuple[Index, ...] = ()
    mlps: tuple[Index, ...] = ()
    layers: tuple[Index, ...] = ()
    mode: Literal["zero", "mean"] = "zero"
    reference_ids: TokenIds | None = None

    @model_validator(mode="after")
    def _one_form(self):
        pairs = bool(self.heads) and isinstance(self.heads[0], tuple)
        if self.point is not None or self.block is not None:
            if self.point is None or self.block is None:
                raise ValueError("the low-level form needs both point and block")
            if self.attn or self.mlps or self.layers or pairs:
                raise ValueError(
                    "give either point and block, or heads=[(block, head), ...] / attn / mlps / "
                    "layers — not both"
                )
            if self.heads is not None and self.point != "head_out":
                raise ValueError("heads can only be chosen at the head_out point")
        else:
            if self.heads is not None and not pairs:
                raise ValueError("heads are (block, head) pairs, e.g. heads=[(3, 4), (5, 1)]")
            if not (self.heads or self.attn or self.mlps or self.layers):
                raise ValueError(
                    "this ablation switches off nothing: name heads=[(block, head), ...], "
                    "attn=[block], mlps=[block] or layers=[block]"
                )
        if self.reference_ids is not None and self.mode != "mean":
            raise ValueError("reference_ids is only used by mode='mean'")
        return self

    @property
    def component_form(self) -> bool:
        return self.point is None

    def edits(self, model: LensModel | None = None) -> list[AtomicEdit]:
        if not self.component_form:
            heads = None if self.heads is None else tuple(self.heads)  # type: ignore[arg-type]
            return [(self.point, self.block, heads)]  # type: ignore[list-item]
        out: list[AtomicEdit] = []
        by_block: dict[int, list[int]] = {}
        for block, head in self.heads or ():  # type: ignore[misc]
            by_block.setdefault(block, [])
            if head not in by_block[block]:
                by_block[block].append(head)
        out += [("head_out", b, tuple(sorted(hs))) for b, hs in sorted(by_block.items())]
        out += [("attn_out", b, None) for b in self.attn]
        out += [("mlp_out", b, None) for b in self.mlps]
        for b in self.layers:
            out += [("attn_out", b, None), ("mlp_out", b, None)]
        seen: set[AtomicEdit] = set()
        return [e for e in out if not (e in seen or seen.add(e))]

    def check(self, model: LensModel) -> None:
        super().check(model)
        if self.reference_ids is not None:
            _check_ids(model, self.reference_ids, "mean-ablation reference")

    def describe(self) -> str:
        how = self.mode if self.reference_ids is None else "mean over a reference text"
        if not self.component_form:
            return f"ablate {_where(self.point, self.block, self.heads, self.positions)} ({how})"  # type: ignore[arg-type]
        parts = []
        if self.heads:
            parts.append("heads " + ", ".join(f"{b}.{h}" for b, h in self.heads))  # type: ignore[misc]
        for name, blocks in (("attention", self.attn), ("MLP", self.mlps), ("block", self.layers)):
            if blocks:
                parts.append(f"{name} {', '.join(map(str, blocks))}")
        at = "" if self.positions is None else " at " + ",".join(map(str, self.positions))
        return f"ablate {'; '.join(parts)}{at} ({how})"


def _vector_shape(value: Any) -> int:
    """1 for a flat list of numbers, 2 for a list of rows."""
    return 2 if value and isinstance(value[0], Sequence) else 1


class Steer(_Intervention):
    """Add ``strength * vector`` to the residual stream h_``layer`` (or to ``point`` of ``block``).

    h_0 is ``resid_pre`` of block 0 and h_l (l >= 1) is ``resid_post`` of block l - 1 (the input
    of block l), so the lens of layer ``layer`` already shows the push. ``where`` says where:

    - ``"all"`` (default for a 1-D vector): every position (or just ``positions``), generated
      ones included;
    - ``"aligned"`` (default for a 2-D vector ``[[...], ...]``, ActAdd): row i is added at
      absolute position i, i.e. aligned with the start of the prompt; rows past the prompt land on
      the first generated positions, so a one-pass re-run gives the same result;
    - ``"generated"`` (CAA): from the prompt's last position (the one that predicts the first new
      token) on, and at every generated position.

    ``strength=0`` is exactly a no-op: nothing is hooked. NaN and infinities are refused.
    """

    kind: Literal["steer"] = "steer"
    layer: Index | None = None
    point: PointName | None = None
    block: Index | None = None
    heads: tuple[Index, ...] | None = Field(None, min_length=1)
    vector: (
        Annotated[tuple[Finite, ...], Field(min_length=1, max_length=65_536)]
        | Annotated[
            tuple[Annotated[tuple[Finite, ...], Field(min_length=1, max_length=65_536)], ...],
            Field(min_length=1, max_length=MAX_POSITIONS),
        ]
    )
    strength: Finite = Field(1.0, ge=-MAX_STRENGTH, le=MAX_STRENGTH)
    where: Literal["all", "aligned", "generated"] = "all"

    @model_validator(mode="before")
    @classmethod
    def _default_where(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("where") is None and "vector" in data:
            vec = data["vector"]
            if hasattr(vec, "tolist"):  # a numpy array or a tensor
                vec = vec.tolist()
            data = {**data, "vector": vec, "where": "aligned" if _vector_shape(vec) == 2 else "all"}
        return data

    @model_validator(mode="after")
    def _consistent(self):
        if (self.layer is None) == (self.point is None):
            raise ValueError("give either layer (a lens layer) or point and block, not both")
        if self.point is not None and self.block is None:
            raise ValueError("a steer at a point needs its block")
        if self.layer is not None and self.block is not None:
            raise ValueError("block goes with point; a steer at a lens layer takes only layer")
        if self.heads is not None and self.point != "head_out":
            raise ValueError("heads can only be chosen at the head_out point")
        two_d = self.is_matrix
        if two_d and len({len(r) for r in self.vector}) != 1:  # type: ignore[arg-type]
            raise ValueError("the rows of a 2-D steering vector must have the same length")
        if two_d != (self.where == "aligned"):
            raise ValueError(
                "where='aligned' takes a 2-D vector (one row per position) and a 2-D vector "
                "needs where='aligned'"
            )
        if self.positions is not None and self.where != "all":
            raise ValueError(f"positions cannot be combined with where={self.where!r}")
        return self

    @property
    def is_matrix(self) -> bool:
        return _vector_shape(self.vector) == 2

    @property
    def width(self) -> int:
        return len(self.vector[0]) if self.is_matrix else len(self.vector)  # type: ignore[arg-type]

    def site_of(self, model: LensModel | None = None) -> Point:
        """The hook point and block the vector is added at."""
        if self.layer is not None:
            return resid_site(self.layer)
        return (self.point, self.block)  # type: ignore[return-value]

    def edits(self, model: LensModel | None = None) -> list[AtomicEdit]:
        if self.strength == 0:
            return []
        name, block = self.site_of(model)
        return [(name, block, self.heads)]

    def check(self, model: LensModel) -> None:
        if self.layer is not None and self.layer > model.info.n_blocks:
            raise InputError(
                f"layer {self.layer} is outside the lens layers 0..{model.info.n_blocks}"
            )
        name, block = self.site_of(model)
        _check_block_heads(model, block, self.heads)
        want = point_width(model, name)
        if self.width != want:
            at = f"layer {self.layer}" if self.layer is not None else name
            raise InputError(f"a steering vector at {at} needs {want} numbers; got {self.width}")

    def describe(self) -> str:
        if self.layer is None:
            at = _where(self.point, self.block, self.heads, self.positions)  # type: ignore[arg-type]
        else:
            at = f"layer {self.layer}"
            if self.positions is not None:
                at += " at " + ",".join(map(str, self.positions))
        return f"steer {at} ({self.where}) strength {self.strength:g}"


Intervention = Annotated[Patch | Ablate | Steer, Field(discriminator="kind")]
intervention_list: TypeAdapter[list[Intervention]] = TypeAdapter(list[Intervention])


def _where(point: str, block: int, heads, positions) -> str:
    where = f"{point}[{block}]"
    if heads is not None:
        where += " heads " + ",".join(map(str, heads))
    if positions is not None:
        where += " at " + ",".join(map(str, positions))
    return where


def _check_block_heads(model: LensModel, block: int, heads: Sequence[int] | None) -> None:
    info = model.info
    if block >= info.n_blocks:
        raise InputError(f"block {block} is outside the model's blocks 0..{info.n_blocks - 1}")
    if heads is not None and max(heads) >= info.n_heads:
        raise InputError(
            f"head {max(heads)} (of block {block}) is outside the heads 0..{info.n_heads - 1}"
        )


def _check_ids(model: LensModel, ids: Sequence[int], what: str) -> None:
    if max(ids) >= model.info.vocab_size:
        raise InputError(f"{what} token id {max(ids)} is outside the vocabulary")
    if len(ids) > model.info.context_length:
        raise InputError(f"the {what} is longer than the model's context")


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


def check_not_everything(
    model: LensModel, items: Sequence[tuple[_Intervention, AtomicEdit]]
) -> None:
    """Refuse ablations that together switch off every attention layer and every MLP.

    An attention layer counts as off when ``attn_out`` is ablated or every head of its
    ``head_out`` is; an MLP when ``mlp_out`` or ``mlp_post`` is (at every position). What would
    be left is the embedding read through the unembedding — not a model to look inside.
    """
    n_blocks, n_heads = model.info.n_blocks, model.info.n_heads
    heads_off: dict[int, set[int]] = {}
    mlp_off: set[int] = set()
    for iv, (name, block, heads) in items:
        if not isinstance(iv, Ablate) or iv.positions is not None:
            continue
        if name == "attn_out" or (name == "head_out" and heads is None):
            heads_off[block] = set(range(n_heads))
        elif name == "head_out":
            heads_off.setdefault(block, set()).update(heads)  # type: ignore[arg-type]
        elif name in ("mlp_out", "mlp_post"):
            mlp_off.add(block)
    if not heads_off and not mlp_off:  # no ablation at all (even on a model with no blocks)
        return
    attn_off = {b for b, hs in heads_off.items() if len(hs) == n_heads}
    if len(attn_off) == n_blocks and len(mlp_off) == n_blocks:
        raise InputError(
            "this ablation switches off every attention layer and every MLP of all "
            f"{n_blocks} blocks: nothing but the embedding would be left. Keep at least one"
        )


class SourceCache:
    """Clean activations of other inputs (patch sources, mean-ablation references), keyed by
    (ids, point, block), computed on demand."""

    def __init__(self, model: LensModel) -> None:
        self.model = model
        self._values: dict[tuple[tuple[int, ...], str, int], torch.Tensor] = {}

    def need(self, patches: Sequence[Patch]) -> None:
        """Run each patch's source once for whatever of its points is not cached yet."""
        self.need_sites([(p.source_ids, p.site) for p in patches])

    def need_sites(self, wanted: Sequence[tuple[tuple[int, ...], Point]]) -> None:
        """Run each input once for whatever of its (point, block) sites is not cached yet."""
        missing: dict[tuple[int, ...], set[Point]] = {}
        for ids, site in wanted:
            if (ids, *site) not in self._values:
                missing.setdefault(ids, set()).add(site)
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

    def value(self, ids: Sequence[int], name: str, block: int) -> torch.Tensor:
        """The values [T, ...] of ``ids`` at (name, block) (after :meth:`need_sites`)."""
        return self._values[(tuple(ids), name, block)]

    def put(self, ids: Sequence[int], name: str, block: int, value: torch.Tensor) -> None:
        """Seed the cache with values already recorded (``value`` [T, ...], batch row removed)."""
        self._values[(tuple(ids), name, block)] = value


def _prompt_mean(iv: _Intervention) -> bool:
    return isinstance(iv, Ablate) and iv.mode == "mean" and iv.reference_ids is None


class Bound:
    """Interventions bound to a model: ``edit`` for :class:`Hooks`, applied at ``sites``.

    ``rows[i]`` lists what batch row i gets; a single list applies to every row. A pass whose
    first position is 0 is a prompt pass: it sets the prompt length (for ``where="generated"``)
    and the prompt means of mean ablations; later passes (generation) reuse them.
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
        self.items = [[(iv, e) for iv in r for e in iv.edits(model)] for r in self.rows]
        self.sites: set[Point] = {(e[0], e[1]) for r in self.items for _, e in r}
        self._means: dict[tuple[int, int], torch.Tensor] = {}  # (row, item index) -> mean
        self._vectors: dict[tuple[int, int], torch.Tensor] = {}
        self._n_prompt: int | None = None

    def edit(self, name: str, block: int, x: torch.Tensor, positions: range) -> torch.Tensor | None:
        if positions.start == 0:
            self._n_prompt = len(positions)
        out = None
        row_sets = [(None, self.items[0])] if self.broadcast else list(enumerate(self.items))
        for row, items in row_sets:
            rows = slice(None) if row is None else slice(row, row + 1)
            for k, (iv, (point, b, heads)) in enumerate(items):
                if (point, b) != (name, block):
                    continue
                key = (row or 0, k)
                if _prompt_mean(iv) and (positions.start == 0 or key not in self._means):
                    cur = x if out is None else out  # the prompt's pass (or the first one seen)
                    self._means[key] = cur[rows].mean(dim=1, keepdim=True)
                local = self._local(iv, positions)
                if local is None:
                    continue
                if out is None:
                    out = x.clone()
                self._apply(iv, (point, b, heads), out, rows, local, positions, key)
        return out

    def _apply(self, iv, edit: AtomicEdit, out, rows, local, positions, key) -> None:
        """Edit ``out`` [B, T_new, ...] in place at batch ``rows`` and time indices ``local``."""
        name, block, heads = edit
        idx = torch.as_tensor(local, device=out.device)
        if heads is None:
            where: tuple = (rows, idx)
            pick: Any = slice(None)
        else:
            pick = torch.as_tensor(heads, device=out.device)
            where = (rows, idx[:, None], pick)
        if isinstance(iv, Patch):
            src = self.sources.get(iv)
            absolute = torch.as_tensor([positions[i] for i in local], device=src.device)
            value = src[absolute].to(out.device, out.dtype)  # [n, ...]
            out[where] = value if heads is None else value[:, pick]
        elif isinstance(iv, Ablate) and iv.mode == "zero":
            out[where] = 0
        elif isinstance(iv, Ablate) and iv.reference_ids is not None:
            mean = self._means.get(key)
            if mean is None:  # once per bind, not once per generated token
                ref = self.sources.value(iv.reference_ids, name, block)
                mean = self._means[key] = ref.mean(dim=0).to(out.device, out.dtype)  # [...]
            out[where] = mean if heads is None else mean[pick]
        elif isinstance(iv, Ablate):
            mean = self._means[key]
            out[where] = mean if heads is None else mean[:, :, pick]
        else:
            vec = self._vectors.get(key)
            if vec is None:
                vec = self._vectors[key] = torch.tensor(
                    iv.vector, dtype=out.dtype, device=out.device
                )
            if iv.is_matrix:
                vec = vec[torch.as_tensor([positions[i] for i in local], device=out.device)]
                if heads is not None:
                    vec = vec[:, None]
            out[where] += vec * iv.strength

    def _local(self, iv: _Intervention, positions: range) -> list[int] | None:
        """Indices into this pass's time axis that ``iv`` touches (None if none)."""
        wanted = iv.positions
        if isinstance(iv, Patch) and wanted is None:  # every position the source has
            limit = len(iv.source_ids)
            local = [i for i, p in enumerate(positions) if p < limit]
        elif isinstance(iv, Steer) and iv.where == "aligned":
            limit = len(iv.vector)
            local = [i for i, p in enumerate(positions) if p < limit]
        elif isinstance(iv, Steer) and iv.where == "generated":
            first = (self._n_prompt or 1) - 1
            local = [i for i, p in enumerate(positions) if p >= first]
        elif wanted is None:
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

    Patch sources and mean-ablation reference texts run here, once each (``sources`` may hold
    them from an earlier bind).
    """
    rows = [list(interventions)] if per_row is None else [list(r) for r in per_row]
    for r in rows:
        for iv in r:
            if not isinstance(iv, _Intervention):
                raise InputError(f"not an intervention: {iv!r}")
            iv.check(model)
        check_not_everything(model, [(iv, e) for iv in r for e in iv.edits(model)])
    sources = sources or SourceCache(model)
    wanted: list[tuple[tuple[int, ...], Point]] = []
    for r in rows:
        for iv in r:
            if isinstance(iv, Patch):
                wanted.append((iv.source_ids, iv.site))
            elif isinstance(iv, Ablate) and iv.reference_ids is not None:
                wanted += [(iv.reference_ids, (e[0], e[1])) for e in iv.edits(model)]
    sources.need_sites(wanted)
    return Bound(model, rows, sources, broadcast=per_row is None)


def hooks_for(bound: Bound, record=(), **kwargs) -> Hooks:
    """A :class:`Hooks` that records ``record`` and applies ``bound`` where it acts."""
    edit: Edit | None = bound.edit if bound.sites else None
    return Hooks(bound.model, record=record, edit=edit, edit_at=bound.sites, **kwargs)
