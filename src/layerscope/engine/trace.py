"""A Trace: one prompt (plus generation) captured and read through the logit lens."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from layerscope.engine.capture import Capture, Edit, capture
from layerscope.engine.lens import LayerCallback, Lens, compute_lens, layer_logits
from layerscope.engine.sampling import make_sampler
from layerscope.errors import InputError
from layerscope.models.base import LensModel

TokenCallback = Callable[[int, int, str], None]
#: decimals kept for probabilities and for entropies / KL in serialised traces
PROB_DECIMALS = 6
NATS_DECIMALS = 5


@dataclass
class Trace:
    """Tokens, lens statistics and (optionally) the captured activations of one run."""

    model_name: str
    ids: list[int]
    n_prompt: int
    layers: list[str]
    lens: Lens
    token_text: dict[int, str]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    capture: Capture | None = None
    model: LensModel | None = field(default=None, repr=False)

    @property
    def tokens(self) -> list[dict[str, Any]]:
        """Every position as ``{"id", "text"}``."""
        return [{"id": i, "text": self.token_text[i]} for i in self.ids]

    @property
    def n_layers(self) -> int:
        """Number of lens layers (L + 1)."""
        return len(self.layers)

    def tokens_at(self, layer: int) -> list[int]:
        """The argmax prediction at every position when reading ``layer`` (predicts t + 1)."""
        return self.lens.top_ids[layer, :, 0].tolist()

    def text_at(self, layer: int) -> str:
        """The decoded argmax text at ``layer``."""
        return "".join(self.token_text[i] for i in self.tokens_at(layer))

    def stable_at(self, layer: int) -> np.ndarray:
        """Bool [T]: positions whose argmax at ``layer`` equals the final layer's."""
        return self.lens.top_ids[layer, :, 0] == self.lens.top_ids[-1, :, 0]

    def lock_in(self) -> np.ndarray:
        """Per position, the first layer from which the final argmax keeps rank 1."""
        return self.lens.lock_in()

    def layer_logits(self, layer: int) -> torch.Tensor:
        """Full lens logits [T, V] of one layer (needs the capture and the model)."""
        if self.capture is None or self.model is None:
            raise ValueError("this trace kept no activations; trace again with keep_capture=True")
        return layer_logits(self.model, self.capture.resid, layer)

    def nbytes(self) -> int:
        """Approximate memory held by this trace."""
        return self.lens.nbytes() + (self.capture.nbytes() if self.capture is not None else 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``trace --json`` schema, documented in the README).

        Timings are left out on purpose: same model, input, settings and seed give the same dict.
        """
        lens = self.lens
        return {
            "model": self.model_name,
            "tokens": self.tokens,
            "n_prompt": self.n_prompt,
            "layers": list(self.layers),
            "lens": {
                "top_ids": lens.top_ids.tolist(),
                "top_probs": _rounded(lens.top_probs, PROB_DECIMALS),
                "final_rank": lens.final_rank.tolist(),
                "final_prob": _rounded(lens.final_prob, PROB_DECIMALS),
                "next_rank": lens.next_rank.tolist(),
                "next_prob": _rounded(lens.next_prob, PROB_DECIMALS),
                "entropy": _rounded(lens.entropy, NATS_DECIMALS),
                "kl_final": _rounded(lens.kl_final, NATS_DECIMALS),
            },
            "lock_in": self.lock_in().tolist(),
            "token_text": {str(i): t for i, t in sorted(self.token_text.items())},
            "settings": dict(self.settings),
        }


def _rounded(a: np.ndarray, decimals: int) -> list:
    """Nested lists of rounded floats, NaN as None (valid JSON)."""
    out = np.round(a.astype(np.float64), decimals).tolist()
    if np.isnan(a).any():
        return _nan_to_none(out)
    return out


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


def prompt_ids(
    model: LensModel, prompt: str | None, ids: Sequence[int] | None, chat: bool
) -> list[int]:
    """Token ids for a prompt (plain or chat), or validated raw ids; a clear error if invalid."""
    if ids is not None:
        if prompt is not None:
            raise InputError("give either a prompt or token ids, not both")
        out = [int(i) for i in ids]
        if not out:
            raise InputError("no token ids given")
        vocab = model.info.vocab_size
        bad = [i for i in out if not 0 <= i < vocab]
        if bad:
            raise InputError(f"token ids out of range 0..{vocab - 1}: {bad[:5]}")
        return out
    if prompt is None or not prompt.strip():
        raise InputError("the prompt is empty")
    if chat:
        return model.tokenizer.encode_chat([{"role": "user", "content": prompt}])
    return model.tokenizer.encode(prompt)


def check_length(model: LensModel, n_prompt: int, generate: int) -> None:
    """A clear error when the prompt plus the tokens to generate exceed the model's context."""
    limit = model.info.context_length
    if n_prompt + generate > limit:
        raise InputError(
            f"{n_prompt} prompt tokens + {generate} to generate exceed the model's context "
            f"of {limit} tokens"
        )


def run_trace(
    model: LensModel,
    prompt: str | None = None,
    *,
    ids: Sequence[int] | None = None,
    generate: int = 0,
    chat: bool = False,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    lens_top_k: int = 10,
    attention: bool = True,
    keep_capture: bool = True,
    edit: Edit | None = None,
    extra_settings: dict[str, Any] | None = None,
    on_token: TokenCallback | None = None,
    on_layer: LayerCallback | None = None,
) -> Trace:
    """Capture ``prompt`` (or raw ``ids``), generate ``generate`` tokens, and read every layer.

    ``edit`` intervenes on the pass (see :mod:`layerscope.engine.capture`); ``extra_settings`` are
    recorded in the trace's settings (e.g. which cell an intervention patched).
    """
    t0 = time.perf_counter()
    if generate < 0:
        raise InputError("the number of tokens to generate must be >= 0")
    if lens_top_k < 1:
        raise InputError("lens top-k must be >= 1")
    tokens = prompt_ids(model, prompt, ids, chat)
    check_length(model, len(tokens), generate)
    sampler = make_sampler(temperature, top_k, seed, model.device)
    tok = model.tokenizer
    t1 = time.perf_counter()
    token_cb = None
    if on_token is not None:

        def token_cb(position: int, token_id: int) -> None:
            on_token(position, token_id, tok.token_text(token_id))

    cap = capture(
        model,
        tokens,
        attention=attention,
        edit=edit,
        generate=generate,
        sampler=sampler,
        stop_ids=tok.stop_ids,
        on_token=token_cb,
    )
    t2 = time.perf_counter()
    lens = compute_lens(model, cap.resid, cap.ids, k=lens_top_k, on_layer=on_layer)
    t3 = time.perf_counter()
    seen = set(cap.ids) | set(np.unique(lens.top_ids).tolist())
    token_text = {i: tok.token_text(i) for i in sorted(seen)}
    n_layers = model.info.n_layers
    settings = {
        "chat": chat,
        "generate": generate,
        "temperature": temperature,
        "top_k": top_k,
        "seed": seed,
        "lens_top_k": lens_top_k,
        "attention": attention,
        "raw_ids": ids is not None,
        **(extra_settings or {}),
    }
    t4 = time.perf_counter()
    return Trace(
        model_name=model.info.name,
        ids=cap.ids,
        n_prompt=len(tokens),
        layers=[f"h_{i}" for i in range(n_layers + 1)],
        lens=lens,
        token_text=token_text,
        settings=settings,
        timings={
            "encode": t1 - t0,
            "forward": t2 - t1,
            "lens": t3 - t2,
            "total": t4 - t0,
        },
        capture=cap if keep_capture else None,
        model=model if keep_capture else None,
    )
