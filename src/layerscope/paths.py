"""Where layerscope keeps files on disk (only converted model weights; traces stay in memory)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_root() -> Path:
    """The user cache directory (``LAYERSCOPE_CACHE`` overrides it)."""
    override = os.environ.get("LAYERSCOPE_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("layerscope"))


def model_cache_dir() -> Path:
    """Directory holding converted models, one sub-directory each."""
    return cache_root() / "models"
