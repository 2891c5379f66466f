"""Native nanochat (Karpathy) models: checkpoint loading, tokenizer and chat format, the model."""

from layerscope.models.nanochat.adapter import NanochatLM
from layerscope.models.nanochat.checkpoint import (
    HF_REPO_D32,
    find_hf_cache_d32,
    find_local_checkpoints,
)
from layerscope.models.nanochat.config import NanochatConfig
from layerscope.models.nanochat.fetch import fetch_d32
from layerscope.models.nanochat.load import load_nanochat
from layerscope.models.nanochat.tokenizer import NanochatTokenizer

__all__ = [
    "HF_REPO_D32",
    "NanochatConfig",
    "NanochatLM",
    "NanochatTokenizer",
    "fetch_d32",
    "find_hf_cache_d32",
    "find_local_checkpoints",
    "load_nanochat",
]
