"""``load_nanochat``: a checkpoint directory -> a ready ``NanochatLM``."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from layerscope.errors import ModelLoadError
from layerscope.models.device import default_device, dtype_for
from layerscope.models.nanochat.adapter import NanochatLM
from layerscope.models.nanochat.checkpoint import (
    checkpoint_files,
    find_tokenizer,
    load_state_dict,
    read_meta,
    resolve_checkpoint_dir,
    validated_state_dict,
)
from layerscope.models.nanochat.config import NanochatConfig
from layerscope.models.nanochat.model import NanochatTransformer
from layerscope.models.nanochat.tokenizer import NanochatTokenizer


def build_module(
    conf: NanochatConfig,
    state_dict: dict[str, torch.Tensor],
    device: torch.device,
    dtype: torch.dtype,
) -> NanochatTransformer:
    """A transformer whose parameters are ``state_dict`` moved to ``device`` / ``dtype``."""
    with torch.device("meta"):
        module = NanochatTransformer(conf)
    tensors = {k: v.to(device=device, dtype=dtype) for k, v in state_dict.items()}
    module.load_state_dict(tensors, strict=True, assign=True)
    return module.eval().requires_grad_(False)


def load_nanochat(
    path: str | Path,
    *,
    step: int | None = None,
    device: str | torch.device | None = None,
    name: str | None = None,
) -> NanochatLM:
    """Load a nanochat checkpoint dir (or nanochat base dir holding ``*_checkpoints/<tag>``)."""
    directory = resolve_checkpoint_dir(path)
    model_file, meta_file, step = checkpoint_files(directory, step)
    conf = NanochatConfig.from_meta(read_meta(meta_file), source=str(meta_file))
    tokenizer = NanochatTokenizer.from_file(find_tokenizer(directory))
    if tokenizer.vocab_size > conf.vocab_size:
        raise ModelLoadError(
            f"tokenizer has {tokenizer.vocab_size} tokens but the model only {conf.vocab_size}: "
            "the tokenizer does not belong to this checkpoint"
        )
    sd = validated_state_dict(load_state_dict(model_file), conf, str(model_file))
    dev = default_device(device)
    try:
        module = build_module(conf, sd, dev, dtype_for(dev))
    except (RuntimeError, ValueError) as e:
        raise ModelLoadError(f"cannot place weights of {model_file} on {dev}: {e}") from e
    if name is None:
        tag = directory.name if re.fullmatch(r"d\d+", directory.name) else f"d{conf.n_layer}"
        name = f"nanochat-{tag}"
    return NanochatLM(
        module,
        tokenizer,
        name=name,
        source=str(directory),
        extra={"step": step, "checkpoint": str(model_file)},
    )
