"""Several plain traces of prompts of one length from one forward pass.

:func:`run_traces` gives exactly the traces :func:`~layerscope.engine.trace.run_trace` gives for
each prompt alone (every array bit for bit, the same streamed layers) while the model's weights
are read once for the whole batch. It is scoped to what keeps that promise:

- prompts of the same number of tokens (no padding: a padded row is computed differently);
- no generation and no interventions (a plain prefill, then the lens);
- only where the batch is *exact*. A CPU matrix product may round a row differently depending
  on how many rows it multiplies and where the row sits among them (MKL on AVX-512 does for some
  row counts: a batch of 2 × 5 tokens differs from two passes of 5 tokens in the last bits,
  2 × 8 does not). :func:`batch_is_exact` checks a shape once per model (a few random prompts
  through the first blocks, batched and alone, bit for bit) and remembers the answer; an inexact
  batch runs prompt by prompt, with the same results;
- the lens runs per prompt: the unembedding's matrix product over a batch's rows has the same
  row-count dependence, and the lens of one prompt is most of a trace's cost anyway;
- the last position's logits, which the model's head computes over the batch, are recomputed per
  prompt the way a single pass computes them.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence

import numpy as np
import torch

from layerscope.engine.capture import CAPTURED, Capture, capture
from layerscope.engine.hooks import Hooks
from layerscope.engine.interventions import bind, hooks_for
from layerscope.engine.lens import LayerCallback, compute_lens
from layerscope.engine.trace import Trace, check_length, lens_layer_names, prompt_ids
from layerscope.errors import InputError
from layerscope.models.base import LensModel, StopForward

#: blocks the exactness check runs (two: families that alternate two kinds of block)
CHECK_BLOCKS = 2
#: remembered answers of :func:`batch_is_exact`, per model
_exact: weakref.WeakKeyDictionary[LensModel, dict[tuple, bool]] = weakref.WeakKeyDictionary()
_exact_lock = threading.Lock()


def run_traces(
    model: LensModel,
    ids_list: Sequence[Sequence[int]],
    *,
    chat: bool = False,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    lens_top_k: int = 10,
    attention: bool = True,
    keep_capture: bool = True,
    on_layer: Sequence[LayerCallback | None] | None = None,
    skip: Callable[[int], bool] | None = None,
    on_trace: Callable[[int, Trace], None] | None = None,
) -> list[Trace | None]:
    """Trace every prompt of ``ids_list`` (token ids, all of one length), in one forward pass
    where that is exact (:func:`batch_is_exact`), else prompt by prompt.

    Returns one :class:`Trace` per prompt, identical to ``run_trace(model, ids=ids, ...)`` with
    the same settings (``chat``, ``temperature``, ``top_k`` and ``seed`` are only recorded: there
    is no generation) except for ``timings``: ``forward`` is the batch's shared forward time,
    plus ``batch``, the number of prompts that shared the pass (1 when run prompt by prompt).
    ``on_layer[i]`` hears prompt i's layers as :func:`run_trace`'s ``on_layer`` would, prompt
    after prompt; a callback that raises ends the whole call. Where ``skip(i)`` is true when
    prompt i's turn comes (its client has gone, say), its lens is not computed and its entry is
    None. ``on_trace(i, trace)`` hears each trace as soon as it is complete (a server answers
    its client then, not when the whole batch is done).
    """
    t0 = time.perf_counter()
    if lens_top_k < 1:
        raise InputError("lens top-k must be >= 1")
    if not ids_list:
        raise InputError("no prompts to trace")
    batch = [prompt_ids(model, None, ids, False) for ids in ids_list]
    n_tok = len(batch[0])
    if any(len(ids) != n_tok for ids in batch):
        raise InputError(
            f"a batch needs prompts of one length; got {sorted({len(i) for i in batch})} tokens"
        )
    check_length(model, n_tok, 0)
    callbacks = list(on_layer) if on_layer is not None else [None] * len(batch)
    if len(callbacks) != len(batch):
        raise ValueError(f"{len(callbacks)} layer callbacks for {len(batch)} prompts")
    settings = {
        "chat": chat,
        "generate": 0,
        "temperature": temperature,
        "top_k": top_k,
        "seed": seed,
        "lens_top_k": lens_top_k,
        "attention": attention,
        "raw_ids": True,
        "interventions": [],
    }
    t1 = time.perf_counter()
    together = len(batch) > 1 and batch_is_exact(model, n_tok, len(batch), attention=attention)
    shared: dict[int, Capture] = {}
    if together:
        shared = dict(enumerate(capture_batch(model, batch, attention=attention)))
    t2 = time.perf_counter()
    tok = model.tokenizer
    traces: list[Trace | None] = []
    for b, (ids, cb) in enumerate(zip(batch, callbacks, strict=True)):
        if skip is not None and skip(b):
            shared.pop(b, None)
            traces.append(None)
            continue
        t3 = time.perf_counter()
        # a shared capture is dropped here: the trace holds it from now on (or nothing does)
        cap = shared.pop(b) if together else capture(model, ids, attention=attention)
        t4 = time.perf_counter()
        lens = compute_lens(model, cap.resid, cap.ids, k=lens_top_k, on_layer=cb)
        t5 = time.perf_counter()
        seen = set(cap.ids) | set(np.unique(lens.top_ids).tolist())
        token_text = {i: tok.token_text(i) for i in sorted(seen)}
        forward = t2 - t1 if together else t4 - t3
        traces.append(
            Trace(
                model_name=model.info.name,
                ids=cap.ids,
                n_prompt=n_tok,
                layers=lens_layer_names(model),
                lens=lens,
                token_text=token_text,
                settings=dict(settings),
                timings={
                    "encode": t1 - t0,
                    "forward": forward,
                    "lens": t5 - t4,
                    "total": (t1 - t0) + forward + (time.perf_counter() - t4),
                    "batch": float(len(batch) if together else 1),
                },
                capture=cap if keep_capture else None,
                model=model if keep_capture else None,
            )
        )
        if on_trace is not None:
            on_trace(b, traces[-1])
    return traces


def capture_batch(
    model: LensModel, batch: Sequence[Sequence[int]], *, attention: bool = True
) -> list[Capture]:
    """One forward pass over ``batch`` (ids [B, T], one length): each prompt's
    :class:`~layerscope.engine.capture.Capture` (no generation, no interventions). Equal to
    :func:`~layerscope.engine.capture.capture` of each prompt where :func:`batch_is_exact`."""
    ids = [[int(i) for i in row] for row in batch]
    hooks = hooks_for(bind(model, []), record=[("resid_pre", 0), *CAPTURED])
    with torch.inference_mode(), hooks.installed():
        x = torch.tensor(ids, dtype=torch.long, device=model.device)
        out = model.forward(x, output_attentions=attention, last_logits_only=True)
        # The head's product over the batch rounds differently from a single prompt's: each
        # prompt's last logits are recomputed as one pass of that prompt computes them.
        last = hooks.values("resid_post", model.info.n_blocks - 1)[:, -1:]
        logits = [model.unembed(model.final_norm(last[b])).float()[0] for b in range(len(ids))]
    resid = torch.cat([hooks.values("resid_pre", 0)[None], hooks.stacked("resid_post")])
    points = {name: hooks.stacked(name) for name in CAPTURED if name != "resid_post"}
    attn = torch.stack(out.attentions, dim=1) if attention else None  # [B, L, H, T, T]
    return [
        Capture(
            ids=row,
            resid=_own(resid[:, b]),
            head_out=_own(points["head_out"][:, b]),
            attn_out=_own(points["attn_out"][:, b]),
            mlp_post=_own(points["mlp_post"][:, b]),
            mlp_out=_own(points["mlp_out"][:, b]),
            attn=None if attn is None else _own(attn[b]),
            logits=logits[b],
        )
        for b, row in enumerate(ids)
    ]


def batch_is_exact(
    model: LensModel, n_tok: int, batch_size: int, *, attention: bool = True
) -> bool:
    """Whether one pass over ``batch_size`` prompts of ``n_tok`` tokens computes every prompt
    bit for bit as a pass over that prompt alone does, on this model, device and thread count
    (``attention``: with attention probabilities, i.e. the eager attention kernel).

    Checked once per shape (then remembered): random prompts of that shape through the first
    :data:`CHECK_BLOCKS` blocks, batched and one by one, every recorded point compared. Blocks
    of a model share their shapes, so their matrix products take the same code paths.
    """
    if batch_size <= 1:
        return True
    key = (n_tok, batch_size, attention, torch.get_num_threads(), str(model.device))
    with _exact_lock:
        known = _exact.setdefault(model, {}).get(key)
    if known is None:
        known = _check_exact(model, n_tok, batch_size, attention)
        with _exact_lock:
            _exact[model][key] = known
    return known


def _check_exact(model: LensModel, n_tok: int, batch_size: int, attention: bool) -> bool:
    gen = torch.Generator().manual_seed(n_tok * 1009 + batch_size)
    ids = torch.randint(0, model.info.vocab_size, (batch_size, n_tok), generator=gen)
    batched = _first_blocks(model, ids, attention)
    for b in range(batch_size):
        alone = _first_blocks(model, ids[b : b + 1], attention)
        for name, tensors in alone.items():
            if not torch.equal(tensors, batched[name][:, b : b + 1]):
                return False
    return True


def _first_blocks(model: LensModel, ids: torch.Tensor, attention: bool) -> dict[str, torch.Tensor]:
    """Every captured point of the first blocks for ``ids`` [B, T], each [blocks, B, T, ...]
    (attention probabilities too when the pass runs to the end)."""
    n_blocks = min(CHECK_BLOCKS, model.info.n_blocks)
    stop = n_blocks if n_blocks < model.info.n_blocks else None
    record = [(name, block) for name in CAPTURED for block in range(n_blocks)]
    hooks = Hooks(model, record=record, stop_before=stop)
    attn = None
    with torch.inference_mode(), hooks.installed():
        try:
            x = ids.to(model.device)
            out = model.forward(x, output_attentions=attention, last_logits_only=True)
            attn = torch.stack(out.attentions) if attention else None
        except StopForward:
            pass
    got = {name: torch.stack([hooks.values(name, b) for b in range(n_blocks)]) for name in CAPTURED}
    if attn is not None:
        got["attn"] = attn
    return got


def _own(t: torch.Tensor) -> torch.Tensor:
    """A contiguous copy: a stored trace holds its own memory, not a view of the batch's."""
    return t.clone(memory_format=torch.contiguous_format)
