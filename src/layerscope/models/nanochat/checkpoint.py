"""Finding and loading nanochat checkpoints: plain dirs, nanochat's cache, the HF cache."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from layerscope.errors import ModelLoadError, ModelNotFoundError
from layerscope.models.nanochat.config import NanochatConfig, check_state_dict, strip_compile_prefix

HF_REPO_D32 = "karpathy/nanochat-d32"
#: preference order of nanochat's checkpoint kinds (chat models first)
CHECKPOINT_KINDS = ("chatsft", "chatrl", "mid", "base")
_MODEL_RE = re.compile(r"^model_(\d+)\.pt$")


def nanochat_base_dir() -> Path:
    """nanochat's cache root: $NANOCHAT_BASE_DIR or ~/.cache/nanochat."""
    env = os.environ.get("NANOCHAT_BASE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "nanochat"


def steps_in(directory: Path) -> list[int]:
    """Steps of the ``model_*.pt`` files in ``directory``, ascending."""
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _MODEL_RE.match(p.name)))


def find_local_checkpoints() -> list[Path]:
    """Checkpoint dirs under nanochat's own cache that hold a model, chat kinds first."""
    base = nanochat_base_dir()
    found: list[Path] = []
    for kind in CHECKPOINT_KINDS:
        kind_dir = base / f"{kind}_checkpoints"
        if kind_dir.is_dir():
            found += [d for d in sorted(kind_dir.iterdir(), key=_tag_order) if steps_in(d)]
    return found


def _tag_order(d: Path) -> tuple[int, int, str]:
    """d32 first, then deeper models (``d<depth>`` tags) first, then by name."""
    m = re.fullmatch(r"d(\d+)", d.name)
    return (0 if d.name == "d32" else 1, -int(m.group(1)) if m else 0, d.name)


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """The dir holding ``model_*.pt``: ``path`` itself, or the best one under a cache dir."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelNotFoundError(f"no such nanochat checkpoint path: {p}")
    if p.is_file():
        p = p.parent
    if steps_in(p):
        return p
    candidates: list[Path] = []
    kind_dirs = (
        [p / f"{k}_checkpoints" for k in CHECKPOINT_KINDS]
        if not p.name.endswith("_checkpoints")
        else [p]
    )
    for kind_dir in kind_dirs:
        if kind_dir.is_dir():
            candidates += [d for d in sorted(kind_dir.iterdir(), key=_tag_order) if steps_in(d)]
    if not candidates:
        raise ModelNotFoundError(
            f"{p} holds no nanochat checkpoint (expected model_<step>.pt + meta_<step>.json, or "
            f"nanochat's {{chatsft,chatrl,mid,base}}_checkpoints/<tag>/ layout)"
        )
    return candidates[0]


def checkpoint_files(directory: Path, step: int | None = None) -> tuple[Path, Path, int]:
    """(model file, meta file, step): the newest step by default."""
    steps = steps_in(directory)
    if not steps:
        raise ModelNotFoundError(f"{directory} holds no model_<step>.pt file")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise ModelNotFoundError(
            f"{directory} has no step {step}; available steps: {', '.join(map(str, steps))}"
        )
    model = directory / f"model_{step:06d}.pt"
    if not model.exists():  # unpadded names are matched by steps_in too
        model = next(
            p
            for p in directory.iterdir()
            if (m := _MODEL_RE.match(p.name)) and int(m.group(1)) == step
        )
    meta = directory / f"meta_{step:06d}.json"
    if not meta.exists():
        raise ModelNotFoundError(f"{model} has no matching {meta.name} (needed for model_config)")
    return model, meta, step


def find_tokenizer(directory: Path) -> Path:
    """tokenizer.pkl next to the checkpoint, or in nanochat's ``<base>/tokenizer/`` dir."""
    candidates = [
        directory / "tokenizer.pkl",
        directory / "tokenizer" / "tokenizer.pkl",
        directory.parent.parent / "tokenizer" / "tokenizer.pkl",
        nanochat_base_dir() / "tokenizer" / "tokenizer.pkl",
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise ModelNotFoundError(
        f"no tokenizer.pkl for {directory} (looked in: {', '.join(str(c) for c in candidates)})"
    )


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"cannot read {path}: {e}") from e
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{path} is not a JSON object")
    return meta


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of ``path`` (``weights_only``, memory-mapped when possible), prefix stripped."""
    try:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(
            f"cannot load weights {path}: {type(e).__name__}: {_first_line(e)} "
            "(corrupt or truncated download? re-fetch the file)"
        ) from e
    if not isinstance(sd, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()
    ):
        raise ModelLoadError(f"{path} is not a plain state_dict of named tensors")
    return strip_compile_prefix(sd)


def validated_state_dict(
    sd: dict[str, torch.Tensor], conf: NanochatConfig, source: str
) -> dict[str, torch.Tensor]:
    """Check keys/shapes and drop vocab padding rows (their logits are sliced away by nanochat)."""
    rows = check_state_dict(conf, {k: tuple(v.shape) for k, v in sd.items()}, source)
    if rows > conf.vocab_size:
        for k in ("transformer.wte.weight", "lm_head.weight"):
            sd[k] = sd[k][: conf.vocab_size]
    return sd


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    if env := os.environ.get("HF_HUB_CACHE"):
        return Path(env)
    if env := os.environ.get("HF_HOME"):
        return Path(env) / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def find_hf_cache_d32() -> Path | None:
    """The snapshot dir of karpathy/nanochat-d32 in the HF cache (offline), None if absent."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        snap = Path(snapshot_download(HF_REPO_D32, cache_dir=hf_cache_dir(), local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        return None
    if steps_in(snap) and (snap / "tokenizer.pkl").is_file():
        return snap
    return None
