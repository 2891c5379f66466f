"""Activation steering: a vector from contrast prompts, and a sweep of strengths.

Two recipes, chosen by how many contrast pairs are given:

- **ActAdd** (Turner et al. 2023; one pair, ``method="actadd"``): the residual stream h_layer of
  the positive prompt minus that of the negative prompt, position by position — a matrix with one
  row per token. The shorter prompt is padded at its end with the tokenizer's space token (``" "``
  as one token; the family's pad token if a space is not one token) so both have the same length.
  The matrix is added aligned with the start of the prompt being steered (``where="aligned"``).
- **CAA** (Rimsky/Panickssery et al. 2024; several pairs, ``method="caa"``): the mean over the
  pairs of h_layer at the positive prompt's last token minus h_layer at the negative prompt's last
  token — one vector, added from the steered prompt's last position on, at every generated
  position (``where="generated"``).

The vectors are read from clean runs of the plain prompts (no chat template; BOS if the family
adds one). :func:`steer_sweep` generates greedily at several strengths and reports each
generation and the *concept probability*: the mean, over the generated tokens, of the probability
the model gave the concept's first token at the step that chose that token (the first step is the
prompt's last position). Generation stops after a stop token (kept), so each row averages over its
own steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from layerscope.engine.hooks import Hooks
from layerscope.engine.interventions import Steer, bind, hooks_for, resid_site
from layerscope.errors import InputError
from layerscope.models.base import LensModel

DEFAULT_STRENGTHS = (-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0)
#: default steering layer as a fraction of the depth (see :func:`default_layer`)
DEFAULT_LAYER_FRACTION = 0.2
MAX_PAIRS = 64
MAX_GENERATE = 256


def default_layer(model: LensModel) -> int:
    """The lens layer steered when none is given: ``round(0.3 * L)`` (h_9 of SmolLM2-135M's 30
    blocks), inside the 1/5–2/5 of the depth where ActAdd and CAA steer well."""
    return max(1, round(DEFAULT_LAYER_FRACTION * model.info.n_blocks))


@dataclass(frozen=True)
class SteeringVector:
    """A steering vector at lens layer ``layer`` and how to add it (``where``)."""

    layer: int
    vector: np.ndarray  # float32: [d] (CAA) or [n, d] (ActAdd, one row per position)
    where: str  # "aligned" (ActAdd) or "generated" (CAA)
    method: str  # "actadd" (one pair) or "caa" (several pairs)
    positive: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    padding: str = ""  # what the shorter ActAdd prompt was padded with ("" if nothing)

    def to_steer(self, strength: float = 1.0) -> Steer:
        """The intervention that adds ``strength`` times this vector."""
        return Steer(
            layer=self.layer, vector=self.vector.tolist(), strength=strength, where=self.where
        )

    @property
    def norm(self) -> float:
        """Euclidean norm of the vector (of the whole matrix for ActAdd)."""
        return float(np.linalg.norm(self.vector))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "layer": self.layer,
            "vector": self.vector.tolist(),
            "shape": list(self.vector.shape),
            "where": self.where,
            "method": self.method,
            "positive": list(self.positive),
            "negative": list(self.negative),
            "padding": self.padding,
            "norm": self.norm,
        }


def _prompts(value: str | Sequence[str], what: str) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise InputError(f"no {what} prompt given")
    if len(items) > MAX_PAIRS:
        raise InputError(f"at most {MAX_PAIRS} {what} prompts, got {len(items)}")
    for p in items:
        if not isinstance(p, str) or not p.strip():
            raise InputError(f"a {what} prompt is empty")
    return items


def check_layer(model: LensModel, layer: int) -> int:
    """``layer`` as an int if it is a lens layer of ``model`` (InputError otherwise)."""
    n = model.info.n_blocks
    if isinstance(layer, bool) or not isinstance(layer, int | np.integer) or not 0 <= layer <= n:
        raise InputError(f"steering layer {layer!r} is outside the lens layers 0..{n}")
    return int(layer)


def pad_token(model: LensModel) -> tuple[int, str]:
    """The token that pads the shorter ActAdd prompt, and a description of it."""
    tok = model.tokenizer
    ids = tok.encode(" ")
    if tok.bos_id is not None and ids[:1] == [tok.bos_id]:
        ids = ids[1:]
    if len(ids) == 1:
        return ids[0], f"the space token {tok.token_text(ids[0])!r} (id {ids[0]})"
    if tok.pad_id is not None:
        return tok.pad_id, f"the pad token {tok.token_text(tok.pad_id)!r} (id {tok.pad_id})"
    raise InputError("this tokenizer has neither a one-token space nor a pad token to pad with")


def residuals(model: LensModel, ids: Sequence[int], layer: int) -> torch.Tensor:
    """h_layer [T, d] of a clean run of ``ids`` (float32, on the model's device)."""
    site = resid_site(layer)
    hooks = Hooks(model, record=[site])
    x = torch.tensor([list(ids)], dtype=torch.long, device=model.device)
    with torch.inference_mode(), hooks.installed():
        model.forward(x, last_logits_only=True)
    return hooks.values(*site)[0].float()


def steering_vector(
    model: LensModel,
    positive: str | Sequence[str],
    negative: str | Sequence[str],
    layer: int | None = None,
) -> SteeringVector:
    """ActAdd for one pair, CAA (mean difference at the last token) for several (see module)."""
    pos, neg = _prompts(positive, "positive"), _prompts(negative, "negative")
    if len(pos) != len(neg):
        raise InputError(
            f"give as many negative prompts as positive ones (pairs): {len(pos)} vs {len(neg)}"
        )
    layer = default_layer(model) if layer is None else check_layer(model, layer)
    tok = model.tokenizer
    limit = model.info.context_length
    encoded = [(tok.encode(p), tok.encode(n)) for p, n in zip(pos, neg, strict=True)]
    if any(len(a) > limit or len(b) > limit for a, b in encoded):
        raise InputError("a contrast prompt is longer than the model's context")
    if len(encoded) == 1:
        a, b = encoded[0]
        padding = ""
        if len(a) != len(b):
            fill, padding = pad_token(model)
            n = max(len(a), len(b))
            a, b = a + [fill] * (n - len(a)), b + [fill] * (n - len(b))
        diff = residuals(model, a, layer) - residuals(model, b, layer)
        vec = diff.cpu().numpy().astype(np.float32)
        return SteeringVector(layer, vec, "aligned", "actadd", pos, neg, padding)
    diffs = [residuals(model, a, layer)[-1] - residuals(model, b, layer)[-1] for a, b in encoded]
    vec = torch.stack(diffs).mean(dim=0).cpu().numpy().astype(np.float32)
    return SteeringVector(layer, vec, "generated", "caa", pos, neg)


@dataclass(frozen=True)
class SweepRow:
    """One strength of a sweep: the greedy continuation and the concept probability."""

    strength: float
    text: str  # the generated text only
    ids: list[int]  # the generated ids
    concept_prob: float | None  # None when no concept was given
    step_probs: list[float]  # the concept's first-token probability at each generated step


@dataclass(frozen=True)
class SteerSweep:
    """Greedy generations of one prompt with one steering vector at several strengths."""

    prompt_ids: list[int]
    layer: int
    where: str
    method: str
    concept: str | None
    concept_id: int | None
    generate: int
    rows: list[SweepRow]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (rows as ``{strength, text, ids, concept_prob, step_probs}``)."""
        return {
            "prompt_ids": list(self.prompt_ids),
            "layer": self.layer,
            "where": self.where,
            "method": self.method,
            "concept": self.concept,
            "concept_id": self.concept_id,
            "generate": self.generate,
            "rows": [
                {
                    "strength": r.strength,
                    "text": r.text,
                    "ids": list(r.ids),
                    "concept_prob": r.concept_prob,
                    "step_probs": list(r.step_probs),
                }
                for r in self.rows
            ],
        }

    def table(self) -> str:
        """The sweep as a plain-text table, one row per strength."""
        head = "concept p" if self.concept is None else f"p({self.concept!r})"
        lines = [f"{'strength':>8}  {head:>12}  generation"]
        for r in self.rows:
            p = "-" if r.concept_prob is None else f"{r.concept_prob:.4f}"
            text = r.text.replace("\n", "\\n")
            lines.append(f"{r.strength:>8g}  {p:>12}  {text}")
        return "\n".join(lines)


def concept_token(model: LensModel, concept: str) -> int:
    """The first token of ``concept`` (e.g. ``" love"``), BOS skipped."""
    if not concept:
        raise InputError("the concept is empty")
    tok = model.tokenizer
    ids = tok.encode(concept)
    if tok.bos_id is not None and ids[:1] == [tok.bos_id]:
        ids = ids[1:]
    if not ids:
        raise InputError(f"the concept {concept!r} encodes to no token")
    return ids[0]


def _generate(
    model: LensModel, ids: list[int], steer: Steer | None, n: int, concept_id: int | None
) -> tuple[list[int], list[float]]:
    """Greedy ids after ``ids`` with ``steer`` (KV cache, as a trace does) and concept probs."""
    hooks = hooks_for(bind(model, [] if steer is None else [steer]))
    out_ids: list[int] = []
    probs: list[float] = []
    stop = model.tokenizer.stop_ids
    with torch.inference_mode(), hooks.installed():
        x = torch.tensor([ids], dtype=torch.long, device=model.device)
        out = model.forward(x, last_logits_only=True)
        for step in range(n):
            logits = out.logits[0, -1].float()
            if concept_id is not None:
                probs.append(float(torch.softmax(logits, dim=-1)[concept_id]))
            nxt = int(torch.argmax(logits))
            out_ids.append(nxt)
            if nxt in stop or step == n - 1:
                break
            hooks.offset = len(ids) + step
            x = torch.tensor([[nxt]], dtype=torch.long, device=model.device)
            out = model.forward(x, past=out.past, last_logits_only=True)
    return out_ids, probs


def steer_sweep(
    model: LensModel,
    ids: Sequence[int],
    vector: SteeringVector,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    generate: int = 20,
    concept: str | None = None,
) -> SteerSweep:
    """Greedy generations of ``ids`` steered by ``vector`` at each strength (see the module for
    the concept probability). Strength 0 is the unsteered run."""
    ids = list(ids)
    if not 1 <= generate <= MAX_GENERATE:
        raise InputError(f"generate must be in 1..{MAX_GENERATE}, got {generate}")
    if not strengths:
        raise InputError("no strengths to sweep")
    if len(strengths) > 32:
        raise InputError("at most 32 strengths in one sweep")
    if len(ids) + generate > model.info.context_length:
        raise InputError("the prompt plus the tokens to generate exceed the model's context")
    for s in strengths:
        if not math.isfinite(float(s)):
            raise InputError(f"a steering strength must be a finite number, got {s}")
    concept_id = None if concept is None else concept_token(model, concept)
    steers = [vector.to_steer(float(s)) for s in strengths]
    bind(model, steers)  # validate every strength against the model before generating
    rows = []
    for s, steer in zip(strengths, steers, strict=True):
        out, probs = _generate(model, ids, steer, generate, concept_id)
        rows.append(
            SweepRow(
                strength=float(s),
                text=model.tokenizer.decode(out),
                ids=out,
                concept_prob=float(np.mean(probs)) if probs else None,
                step_probs=probs,
            )
        )
    return SteerSweep(
        prompt_ids=ids,
        layer=vector.layer,
        where=vector.where,
        method=vector.method,
        concept=concept,
        concept_id=concept_id,
        generate=generate,
        rows=rows,
    )
