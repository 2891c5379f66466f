"""``layerscope fetch nanochat-d32``: the one place that downloads nanochat weights."""

from __future__ import annotations

from pathlib import Path

from layerscope.errors import MissingPackageError, ModelLoadError
from layerscope.models.nanochat.checkpoint import HF_REPO_D32, hf_cache_dir

D32_FILES = ["model_000650.pt", "meta_000650.json", "tokenizer.pkl", "token_bytes.pt"]


def fetch_d32(progress: bool = True) -> Path:
    """Download karpathy/nanochat-d32 (about 7.3 GB) into the HF cache; return its snapshot dir."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )
    except ImportError as e:
        raise MissingPackageError(
            "downloading nanochat-d32 needs huggingface_hub: pip install huggingface_hub"
        ) from e
    was_disabled = are_progress_bars_disabled()
    if progress:
        enable_progress_bars()
    else:
        disable_progress_bars()
    try:
        return Path(
            snapshot_download(HF_REPO_D32, cache_dir=hf_cache_dir(), allow_patterns=D32_FILES)
        )
    except Exception as e:
        raise ModelLoadError(
            f"could not download {HF_REPO_D32}: {type(e).__name__}: {e}. Check the network "
            "connection (and HF_HUB_OFFLINE), or copy a nanochat checkpoint dir and load it by path"
        ) from e
    finally:
        if was_disabled:
            disable_progress_bars()
        else:
            enable_progress_bars()
