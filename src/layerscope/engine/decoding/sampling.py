"""Choosing the next token: greedy, or seeded temperature / top-k sampling."""

from __future__ import annotations

import math

import torch

from layerscope.errors import InputError


def make_sampler(temperature: float, top_k: int | None, seed: int, device: torch.device):
    """A function logits [V] -> next id. Same seed and logits → same choices."""
    if not math.isfinite(temperature) or temperature < 0:
        raise InputError(f"temperature must be a number >= 0, not {temperature}")
    if top_k is not None and top_k < 1:
        raise InputError("top-k must be >= 1")
    if temperature == 0:
        return lambda logits: int(torch.argmax(logits))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)

    def scaled(logits: torch.Tensor) -> torch.Tensor:
        z = logits / temperature
        if bool((torch.isnan(z) | torch.isposinf(z)).any()):
            # a temperature so small that logits / T overflows (or is 0 in float32): sampling's
            # limit there is the most likely token
            return torch.nn.functional.one_hot(logits.argmax(), logits.shape[-1]).float()
        return torch.softmax(z, dim=-1)

    def sample(logits: torch.Tensor) -> int:
        logits = logits.float()
        if top_k is not None and top_k < logits.shape[-1]:
            vals, idx = torch.topk(logits, top_k)
            return int(idx[torch.multinomial(scaled(vals), 1, generator=generator)])
        return int(torch.multinomial(scaled(logits), 1, generator=generator))

    return sample
