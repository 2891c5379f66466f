"""The lens statistics, declared once: name, dtype, shape, rounding and meaning.

Everything that lists statistics derives from :data:`STATISTICS`: the :class:`~layerscope.engine.
lens.Lens` arrays, ``Trace.to_dict`` (``trace --json``), the protocol's layer frames and their JSON
Schema, the web client (it reads this list from the hello frame) and the README's table.

Rounding policy, one for every output: probabilities keep 6 decimals, nats (entropy, KL) 5;
integers are exact; a value that is unknown (the next token at the last position) is ``null``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

PROB_DECIMALS = 6
NATS_DECIMALS = 5


@dataclass(frozen=True)
class Statistic:
    """One per-(layer, position) lens statistic."""

    name: str
    dtype: Literal["int32", "float32"]
    per_k: bool  # one value per kept prediction ([..., k]) rather than one per cell
    decimals: int | None  # None: an integer, exact
    meaning: str
    nullable: bool = False  # unknown values are null in JSON (NaN in arrays)

    @property
    def shape(self) -> str:
        """Axes of one layer's array: ``position`` or ``position,k``."""
        return "position,k" if self.per_k else "position"

    def python_type(self) -> Any:
        """The JSON type of one layer's array (for schemas)."""
        scalar: Any = int if self.dtype == "int32" else float
        if self.nullable:
            scalar = scalar | None
        return list[list[scalar]] if self.per_k else list[scalar]

    def to_json(self, a: np.ndarray) -> list:
        """Nested lists, rounded per the policy, NaN as None."""
        if self.decimals is None:
            return np.asarray(a).astype(np.int64).tolist()
        out = np.round(np.asarray(a, dtype=np.float64), self.decimals).tolist()
        if self.nullable and np.isnan(a).any():
            return _nan_to_none(out)
        return out

    def doc(self) -> dict[str, Any]:
        """The declaration as JSON (sent in the protocol's hello frame)."""
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": self.shape,
            "decimals": self.decimals,
            "nullable": self.nullable,
            "meaning": self.meaning,
        }


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


STATISTICS: tuple[Statistic, ...] = (
    Statistic("top_ids", "int32", True, None, "top-k token ids of the lens readout"),
    Statistic("top_probs", "float32", True, PROB_DECIMALS, "their probabilities"),
    Statistic(
        "final_rank",
        "int32",
        False,
        None,
        "rank of the final layer's argmax token (1 = this layer's top-1)",
    ),
    Statistic("final_prob", "float32", False, PROB_DECIMALS, "its probability"),
    Statistic(
        "next_rank",
        "int32",
        False,
        None,
        "rank of the actual next token (−1 at the last position)",
    ),
    Statistic(
        "next_prob",
        "float32",
        False,
        PROB_DECIMALS,
        "its probability (null where unknown)",
        nullable=True,
    ),
    Statistic("entropy", "float32", False, NATS_DECIMALS, "entropy of the readout (nats)"),
    Statistic(
        "kl_final",
        "float32",
        False,
        NATS_DECIMALS,
        "KL(final ‖ layer) (nats; 0 at the final layer)",
    ),
)
BY_NAME: dict[str, Statistic] = {s.name: s for s in STATISTICS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def markdown_table(prefix: str = "lens.") -> str:
    """The README table of the statistics (``| key | type | meaning |``)."""
    rows = ["| key | type | meaning |", "|---|---|---|"]
    for s in STATISTICS:
        scalar = "int" if s.dtype == "int32" else "float"
        if s.nullable:
            scalar += " or null"
        dims = "[layer][position][k]" if s.per_k else "[layer][position]"
        rows.append(f"| `{prefix}{s.name}` | {scalar} `{dims}` | {s.meaning} |")
    return "\n".join(rows)
