"""Beam search with the tree of expansions; every beam opens as an ordinary trace.

The alive beams run as one batch, one row each, through the KV cache; after each step the cache
rows are reordered to the surviving beams (:meth:`LensModel.select_cache_rows`). A beam's
``logprob`` is the sum of its generated tokens' log-probabilities; its ``score`` is
``logprob / n_generated ** length_penalty`` (0 = plain sum, 1 = per-token mean, > 1 favours
longer beams). With ``stop_at_eos`` a candidate ending in one of the tokenizer's stop ids that
ranks within the top ``width`` of its step is finished (kept, not extended). The search ends after
``length`` tokens, or once ``width`` beams are finished and no alive beam's current score beats the
worst of them (Hugging Face's default heuristic). The result is the ``width`` best beams,
finished or not; a beam's ``ids`` (prompt + generated) trace with ``model.trace(ids=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from layerscope.engine.interventions import bind, hooks_for
from layerscope.engine.trace import check_length
from layerscope.errors import InputError
from layerscope.models.base import LensModel

MAX_WIDTH = 64


@dataclass(frozen=True)
class Beam:
    """One beam: the whole sequence, its generated text and its log-probability."""

    ids: list[int]  # prompt + generated
    text: str  # the generated part
    logprob: float  # sum of the generated tokens' log-probabilities
    score: float  # logprob / n_generated ** length_penalty
    finished: bool  # ended with a stop token
    n_prompt: int


@dataclass
class BeamNode:
    """One kept expansion: a token appended to its parent's sequence.

    Node 0 is the prompt (``token_id`` None). ``rank`` is its place (1 = best) among the beams
    kept at its ``step``; ``beam_ranks`` the ranks (1-based) of the final beams whose path runs
    through it (empty: pruned later).
    """

    id: int
    parent: int | None
    token_id: int | None
    text: str
    logprob: float
    cum_logprob: float
    step: int
    rank: int
    finished: bool = False
    beam_ranks: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class BeamResult:
    """The best beams (best first) and the tree of every expansion kept along the way."""

    prompt_ids: list[int]
    beams: list[Beam]
    tree: list[BeamNode]
    width: int
    length: int
    length_penalty: float
    stop_at_eos: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "prompt_ids": list(self.prompt_ids),
            "beams": [asdict(b) for b in self.beams],
            "tree": [asdict(n) for n in self.tree],
            "width": self.width,
            "length": self.length,
            "length_penalty": self.length_penalty,
            "stop_at_eos": self.stop_at_eos,
        }


def _check(width: int, length: int, length_penalty: float) -> None:
    for name, value, top in (("width", width, MAX_WIDTH), ("length", length, None)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"beam {name} must be an integer >= 1, got {value!r}")
        if top is not None and value > top:
            raise InputError(f"beam {name} must be at most {top}, got {value}")
    if not math.isfinite(length_penalty):
        raise InputError("the length penalty must be a finite number")


@torch.inference_mode()
def beam_search(
    model: LensModel,
    ids: Sequence[int],
    width: int = 4,
    length: int = 12,
    length_penalty: float = 1.0,
    stop_at_eos: bool = True,
    interventions: Sequence = (),
) -> BeamResult:
    """Beam search from ``ids`` (see the module docstring); ``interventions`` edit every pass."""
    _check(width, length, length_penalty)
    prompt = [int(i) for i in ids]
    if not prompt:
        raise InputError("the prompt is empty")
    check_length(model, len(prompt), length)
    tok = model.tokenizer
    stops = tok.stop_ids if stop_at_eos else frozenset()
    dev = model.device
    hooks = hooks_for(bind(model, interventions))
    root = BeamNode(0, None, None, "", 0.0, 0.0, 0, 1)
    tree: list[BeamNode] = [root]
    finished: list[tuple[float, int]] = []  # (score, node id)
    alive: list[int] = [0]  # node id of each batch row
    with hooks.installed():
        out = model.forward(torch.tensor([prompt], device=dev), last_logits_only=True)
        for step in range(1, length + 1):
            logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [rows, V]
            cum = torch.tensor([tree[n].cum_logprob for n in alive], device=logp.device)
            flat = (cum[:, None] + logp).reshape(-1)
            k = min(flat.numel(), width * (1 + len(stops)))
            values, index = torch.topk(flat, k)
            vocab = logp.shape[1]
            rows, tokens, kept = [], [], []
            for rank, (value, i) in enumerate(zip(values.tolist(), index.tolist(), strict=True)):
                row, token = divmod(i, vocab)
                is_stop = token in stops
                if is_stop and rank >= width:
                    continue
                node = BeamNode(
                    id=len(tree),
                    parent=alive[row],
                    token_id=token,
                    text=tok.token_text(token),
                    logprob=float(logp[row, token]),
                    cum_logprob=float(value),
                    step=step,
                    rank=0,
                    finished=is_stop,
                )
                tree.append(node)
                kept.append(node)
                if is_stop:
                    finished.append((value / step**length_penalty, node.id))
                else:
                    rows.append(row)
                    tokens.append(token)
                if len(tokens) == width:
                    break
            for r, node in enumerate(kept, start=1):
                node.rank = r
            alive = [n.id for n in kept if not n.finished]
            if (
                step == length
                or not alive
                or _done(finished, alive, tree, width, step, length_penalty)
            ):
                break
            hooks.offset = len(prompt) + step - 1
            past = model.select_cache_rows(out.past, torch.tensor(rows, device=dev))
            x = torch.tensor(tokens, device=dev)[:, None]
            out = model.forward(x, past=past, last_logits_only=True)
    ends = finished + [(tree[n].cum_logprob / tree[n].step ** length_penalty, n) for n in alive]
    ends.sort(key=lambda e: -e[0])
    beams = [_beam(tree, n, s, prompt, model) for s, n in ends[:width]]
    for rank, (_, n) in enumerate(ends[:width], start=1):
        node: int | None = n
        while node is not None:
            tree[node].beam_ranks.append(rank)
            node = tree[node].parent
    return BeamResult(prompt, beams, tree, width, length, float(length_penalty), stop_at_eos)


def _done(finished, alive, tree, width, step, length_penalty) -> bool:
    """Enough finished beams, and none alive can beat the worst of the best ``width``."""
    if len(finished) < width:
        return False
    worst = sorted((s for s, _ in finished), reverse=True)[width - 1]
    best_alive = max(tree[n].cum_logprob for n in alive) / step**length_penalty
    return worst >= best_alive


def _beam(tree: list[BeamNode], node_id: int, score: float, prompt, model) -> Beam:
    path: list[int] = []
    node: int | None = node_id
    while node is not None and tree[node].token_id is not None:
        path.append(tree[node].token_id)
        node = tree[node].parent
    path.reverse()
    end = tree[node_id]
    return Beam(
        ids=[*prompt, *path],
        text=model.tokenizer.decode(path),
        logprob=end.cum_logprob,
        score=float(score),
        finished=end.finished,
        n_prompt=len(prompt),
    )
