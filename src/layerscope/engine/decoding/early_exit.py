"""Early-exit decoding: greedy tokens read from the lens at one layer, with a KV cache.

The hook installer stops every pass at the input of block ``layer`` (blocks past it never run);
the lens reads the next token there, and the cache of the blocks before it carries on to the
next step, so each token costs one step through ``layer`` blocks, not a re-run of the prefix.
"""

from __future__ import annotations

import torch

from layerscope.engine.hooks import Hooks
from layerscope.errors import InputError
from layerscope.models.base import LensModel, StopForward


@torch.no_grad()
def early_exit_generate(
    model: LensModel, ids: list[int], layer: int, n: int, stop_ids: frozenset[int] = frozenset()
) -> list[int]:
    """Greedy tokens read from the lens at ``layer`` (0..L); what the first ``layer`` blocks
    alone would write. ``layer`` = L is ordinary greedy decoding."""
    n_blocks = model.info.n_blocks
    if not 0 <= layer <= n_blocks:
        raise InputError(f"layer must be within 0..{n_blocks}; got {layer}")
    if len(ids) + n > model.info.context_length:
        raise InputError("the prompt plus the tokens to generate exceed the model's context")
    seq = list(ids)
    out: list[int] = []
    hooks = Hooks(model, stop_before=layer if layer < n_blocks else None)
    past = None
    new = seq
    with hooks.installed():
        for _ in range(n):
            x = torch.tensor([new], device=model.device)
            if layer == n_blocks:
                step = model.forward(x, past=past, last_logits_only=True)
                logits, past = step.logits[0, -1], step.past
            else:
                try:
                    model.forward(x, past=past, last_logits_only=True)
                    raise RuntimeError("the early-exit hook did not fire")
                except StopForward as stop:
                    h, past = stop.value[0, -1], stop.past
                logits = model.unembed(model.final_norm(h[None]))[0]
            tok = int(logits.float().argmax())
            out.append(tok)
            seq.append(tok)
            if tok in stop_ids:
                break
            if layer == 0:  # no block ran, so no cache: the embedding of the whole sequence
                past, new = None, seq
            else:
                hooks.offset, new = len(seq) - 1, [tok]
    return out
