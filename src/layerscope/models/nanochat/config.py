"""nanochat model configuration: meta parsing and version detection by state-dict keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from layerscope.errors import ModelLoadError

#: the six ``model_config`` fields of the architecture that made d32
CONFIG_FIELDS = ("sequence_len", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd")

#: meta fields that belong to later nanochat versions (feature named in the refusal)
LATER_CONFIG_FIELDS = {"window_pattern": "per-layer sliding-window attention (2026-01)"}

#: state-dict key patterns of later nanochat versions -> the feature they implement
LATER_KEY_FEATURES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(resid_lambdas|x0_lambdas)$"), "per-block residual / x0 lambdas (2026-01)"),
    (re.compile(r"^value_embeds\.\d+\.weight$"), "value embeddings (2026-01)"),
    (
        re.compile(r"^transformer\.h\.\d+\.attn\.ve_gate\.weight$"),
        "value-embedding gates (2026-01)",
    ),
    (re.compile(r"^(smear_gate\.weight|smear_lambda)$"), "token smearing (2026-03)"),
    (re.compile(r"^backout_lambda$"), "backout lambda (2026-03)"),
)

COMPILE_PREFIX = "_orig_mod."


@dataclass(frozen=True)
class NanochatConfig:
    """Shape of a nanochat GPT (the d32-era architecture)."""

    n_layer: int
    n_head: int
    n_kv_head: int
    n_embd: int
    vocab_size: int
    sequence_len: int
    rotary_base: float = 10000.0
    softcap: float = 15.0

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], *, source: str = "meta") -> NanochatConfig:
        """Read and validate ``meta["model_config"]``."""
        cfg = meta.get("model_config") if isinstance(meta, Mapping) else None
        if not isinstance(cfg, Mapping):
            raise ModelLoadError(
                f"{source}: no 'model_config' object; is this a nanochat meta file?"
            )
        later = sorted(k for k in cfg if k in LATER_CONFIG_FIELDS)
        if later:
            feats = "; ".join(f"{k}: {LATER_CONFIG_FIELDS[k]}" for k in later)
            raise ModelLoadError(
                f"{source}: this checkpoint comes from a later nanochat version that layerscope "
                f"does not support ({feats}). Supported: the d32-era architecture."
            )
        missing = [k for k in CONFIG_FIELDS if k not in cfg]
        if missing:
            raise ModelLoadError(f"{source}: model_config lacks {', '.join(missing)}")
        unknown = sorted(k for k in cfg if k not in CONFIG_FIELDS)
        if unknown:
            raise ModelLoadError(
                f"{source}: model_config has fields layerscope does not know: {', '.join(unknown)} "
                "(probably a newer nanochat version; refusing rather than guessing their meaning)"
            )
        vals: dict[str, int] = {}
        for k in CONFIG_FIELDS:
            v = cfg[k]
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ModelLoadError(
                    f"{source}: model_config.{k} must be a positive integer, got {v!r}"
                )
            vals[k] = v
        conf = cls(**vals)
        if conf.n_embd % conf.n_head or conf.head_dim % 2:
            raise ModelLoadError(
                f"{source}: n_embd {conf.n_embd} is not n_head {conf.n_head} x an even head_dim"
            )
        if conf.n_head % conf.n_kv_head:
            raise ModelLoadError(
                f"{source}: n_head {conf.n_head} is not a multiple of n_kv_head {conf.n_kv_head}"
            )
        return conf

    def expected_shapes(self, vocab_rows: int | None = None) -> dict[str, tuple[int, ...]]:
        """Every state-dict key of this architecture with its shape."""
        d, hd, rows = self.n_embd, self.head_dim, vocab_rows or self.vocab_size
        shapes: dict[str, tuple[int, ...]] = {
            "transformer.wte.weight": (rows, d),
            "lm_head.weight": (rows, d),
        }
        for i in range(self.n_layer):
            p = f"transformer.h.{i}."
            shapes[p + "attn.c_q.weight"] = (self.n_head * hd, d)
            shapes[p + "attn.c_k.weight"] = (self.n_kv_head * hd, d)
            shapes[p + "attn.c_v.weight"] = (self.n_kv_head * hd, d)
            shapes[p + "attn.c_proj.weight"] = (d, self.n_head * hd)
            shapes[p + "mlp.c_fc.weight"] = (4 * d, d)
            shapes[p + "mlp.c_proj.weight"] = (d, 4 * d)
        return shapes


def strip_compile_prefix(keys: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``_orig_mod.`` prefix torch.compile adds to every key."""
    return {
        (k[len(COMPILE_PREFIX) :] if k.startswith(COMPILE_PREFIX) else k): v
        for k, v in keys.items()
    }


def later_version_features(keys: list[str]) -> list[str]:
    """Names of later-version features whose weights appear among ``keys``."""
    found: list[str] = []
    for pattern, feature in LATER_KEY_FEATURES:
        if any(pattern.match(k) for k in keys) and feature not in found:
            found.append(feature)
    return found


def check_state_dict(
    conf: NanochatConfig, shapes: Mapping[str, tuple[int, ...]], source: str
) -> int:
    """Validate keys and shapes against ``conf``; return the number of vocab rows stored.

    Rows beyond ``vocab_size`` (the 2025-12 padding to a multiple of 64) are allowed: their logits
    are sliced away by nanochat, so the loader drops them. Anything else unexpected is an error.
    """
    keys = list(shapes)
    later = later_version_features(keys)
    if later:
        raise ModelLoadError(
            f"{source}: weights from a later nanochat version that layerscope does not support: "
            f"{'; '.join(later)}. Supported: the d32-era architecture."
        )
    wte = shapes.get("transformer.wte.weight")
    rows = wte[0] if wte and len(wte) == 2 else conf.vocab_size
    if rows < conf.vocab_size:
        raise ModelLoadError(
            f"{source}: transformer.wte.weight has {rows} rows but vocab_size is {conf.vocab_size}"
        )
    expected = conf.expected_shapes(rows)
    missing = [k for k in expected if k not in shapes]
    unknown = [k for k in keys if k not in expected]
    problems: list[str] = []
    if missing:
        problems.append(f"missing keys: {_list(missing)}")
    if unknown:
        problems.append(f"unknown keys: {_list(unknown)}")
    if problems:
        raise ModelLoadError(
            f"{source}: state dict does not match the nanochat architecture of its meta "
            f"(n_layer={conf.n_layer}); " + "; ".join(problems)
        )
    bad = [
        f"{k} {tuple(shapes[k])} (expected {v})"
        for k, v in expected.items()
        if tuple(shapes[k]) != v
    ]
    if bad:
        raise ModelLoadError(f"{source}: tensors with the wrong shape: {_list(bad)}")
    return rows


def _list(items: list[str], limit: int = 8) -> str:
    head = ", ".join(items[:limit])
    return head + (f" ... (+{len(items) - limit} more)" if len(items) > limit else "")
