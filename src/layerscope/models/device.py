"""Device and dtype defaults shared by every model family."""

from __future__ import annotations

import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as given, else CUDA when present, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def dtype_for(device: torch.device) -> torch.dtype:
    """bf16 on GPUs (as the models' own inference runs), fp32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32
