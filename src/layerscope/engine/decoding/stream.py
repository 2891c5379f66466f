"""Plain streamed generation: next tokens one at a time, with a KV cache and nothing recorded.

What a chat reply needs and no more: no hooks, no lens, no captured activations. A trace's own
generation (:func:`layerscope.engine.capture.capture`) picks the same tokens for the same
settings; this one just keeps nothing but the cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from layerscope.engine.decoding.sampling import make_sampler
from layerscope.errors import InputError
from layerscope.models.base import LensModel


def stream_tokens(
    model: LensModel,
    ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    stop_ids: frozenset[int] | None = None,
    no_repeat_ngram: int | None = None,
) -> Iterator[int]:
    """Yield up to ``max_new_tokens`` generated ids after ``ids`` (greedy at temperature 0).

    Generation ends before any id in ``stop_ids`` (default: the tokenizer's), which is not
    yielded. With ``no_repeat_ngram`` = n, a token that would repeat an n-gram already in the
    generated text is never chosen (its logit is set to -inf), as ``transformers``'
    ``no_repeat_ngram_size`` does over the generated part. InputError if the prompt is empty or
    prompt + tokens exceed the model's context.
    """
    ids = [int(i) for i in ids]
    if not ids:
        raise InputError("the prompt is empty")
    if max_new_tokens < 0:
        raise InputError("the number of tokens to generate must be >= 0")
    limit = model.info.context_length
    if len(ids) + max_new_tokens > limit:
        raise InputError(
            f"{len(ids)} prompt tokens + {max_new_tokens} to generate exceed the model's context "
            f"of {limit} tokens"
        )
    stops = model.tokenizer.stop_ids if stop_ids is None else stop_ids
    pick = make_sampler(temperature, top_k, seed, model.device)
    if no_repeat_ngram is not None and no_repeat_ngram < 1:
        raise InputError("no_repeat_ngram must be >= 1")
    past = None
    out_ids: list[int] = []
    x = torch.tensor([ids], dtype=torch.long, device=model.device)
    for _ in range(max_new_tokens):
        with torch.inference_mode():
            out = model.forward(x, past=past, last_logits_only=True)
            logits = out.logits[0, -1].float()
            if no_repeat_ngram:
                banned = _banned(out_ids, no_repeat_ngram)
                if banned:
                    logits[list(banned)] = float("-inf")
            next_id = pick(logits)
        if next_id in stops:
            return
        out_ids.append(next_id)
        yield next_id
        past = out.past
        x = torch.tensor([[next_id]], dtype=torch.long, device=model.device)


def _banned(generated: list[int], n: int) -> set[int]:
    """Tokens that would complete an n-gram already present in ``generated``."""
    if len(generated) < n:
        return set()
    prefix = tuple(generated[len(generated) - n + 1 :])
    return {
        generated[i + n - 1]
        for i in range(len(generated) - n + 1)
        if tuple(generated[i : i + n - 1]) == prefix
    }
