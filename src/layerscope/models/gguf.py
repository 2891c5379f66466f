"""Convert a GGUF file once into an ordinary safetensors model directory (the user cache).

Quantised GGUF weights are dequantised to float by ``transformers``' GGUF loader; the result is
saved with its tokenizer so later loads read plain safetensors (about a second) instead of
dequantising again.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from layerscope.errors import ModelLoadError
from layerscope.models.hf import HFLensModel, load_hf_directory

DONE_MARKER = ".layerscope-complete"


def is_converted(target: Path) -> bool:
    """Whether ``target`` holds a complete conversion (the marker is written last)."""
    return (target / DONE_MARKER).is_file()


def convert_gguf(source: Path, target: Path, *, progress: bool = True) -> Path:
    """Dequantise ``source`` (a .gguf file) into the directory ``target``, atomically.

    ``target`` is replaced only once the new copy is complete; a failure leaves no partial
    directory behind and raises :class:`ModelLoadError` naming the file.
    """
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
        raise ModelLoadError(f"cannot read {source} (corrupt file?): {exc}") from None
    finally:
        if not progress:
            hf_logging.enable_progress_bar()
    # The weights are plain dequantised floats now: drop the GGUF markers so the copy saves (and
    # reloads) as an ordinary safetensors model.
    model.hf_quantizer = None
    model.is_quantized = False
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / DONE_MARKER).write_text(f"converted from {source.name}\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_converted(
    target: Path, convert: Callable[[], Path], name: str, device: str | torch.device | None
) -> HFLensModel:
    """Load the converted copy in ``target``, running ``convert()`` first if it is missing, and
    once more if it turns out damaged (the cache is ours to repair)."""
    if not is_converted(target):
        convert()
    try:
        return load_hf_directory(target, device=device, name=name)
    except ModelLoadError:
        print(f"layerscope: the cached copy in {target} is damaged; rebuilding", file=sys.stderr)
        convert()
        return load_hf_directory(target, device=device, name=name)
