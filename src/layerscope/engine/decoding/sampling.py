"""Choosing the next token: greedy, or seeded temperature / top-k sampling."""

from __future__ import annotations

import torch

from layerscope.errors import InputError


def make_sampler(temperature: float, top_k: int | None, seed: int, device: torch.device):
    """A function logits [V] -> next id. Same seed and logits → same choices."""
    if temperature < 0:
        raise InputError("temperature must be >= 0")
    if top_k is not None and top_k < 1:
        raise InputError("top-k must be >= 1")
    if temperature == 0:
        return lambda logits: int(torch.argmax(logits))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)

    def sample(logits: torch.Tensor) -> int:
        logits = logits.float()
        if top_k is not None and top_k < logits.shape[-1]:
            vals, idx = torch.topk(logits, top_k)
            probs = torch.softmax(vals / temperature, dim=-1)
            return int(idx[torch.multinomial(probs, 1, generator=generator)])
        probs = torch.softmax(logits / temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))

    return sample
