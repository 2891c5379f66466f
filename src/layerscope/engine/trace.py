"""A Trace: one prompt (plus generation) captured and read through the logit lens."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from layerscope.engine.capture import Capture, capture
from layerscope.engine.decoding.sampling import make_sampler
from layerscope.engine.interventions import Bound, bind
from layerscope.engine.lens import LayerCallback, Lens, compute_lens, layer_logits
from layerscope.engine.statistics import BY_NAME
from layerscope.errors import InputError
from layerscope.models.base import LensModel

if TYPE_CHECKING:
    import plotly.graph_objects as go

TokenCallback = Callable[[int, int, str], None]


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
    def n_lens_layers(self) -> int:
        """Number of lens layers (L + 1)."""
        return len(self.layers)

    @property
    def interventions(self) -> list[dict[str, Any]]:
        """The interventions this run was traced with (as JSON objects; [] for a plain run)."""
        return list(self.settings.get("interventions", []))

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

    def check_cell(self, layer: int | None, position: int) -> None:
        """A clear error unless (lens layer, position) is inside this trace."""
        n_layers, n_pos = self.n_lens_layers, len(self.ids)
        if layer is not None and not 0 <= layer < n_layers:
            raise InputError(f"layer {layer} is outside 0..{n_layers - 1}")
        if not 0 <= position < n_pos:
            raise InputError(f"position {position} is outside 0..{n_pos - 1}")

    def cell_top(self, layer: int, position: int, k: int) -> tuple[list[int], np.ndarray]:
        """The ``k`` most likely tokens of one cell's full lens readout: (ids, probabilities)."""
        self.check_cell(layer, position)
        probs = torch.softmax(self.layer_logits(layer, position)[0], dim=-1)
        top = torch.topk(probs, k=min(k, probs.shape[0]))
        return top.indices.tolist(), top.values.cpu().numpy()

    def layer_logits(self, layer: int, position: int | None = None) -> torch.Tensor:
        """Full lens logits [T, V] of one layer, or [1, V] of one ``position`` (needs the
        capture and the model)."""
        if self.capture is None or self.model is None:
            raise ValueError("this trace kept no activations; trace again with keep_capture=True")
        rows = slice(None) if position is None else slice(position, position + 1)
        return layer_logits(self.model, self.capture.resid, layer, rows)

    @property
    def attention(self) -> tuple[torch.Tensor, ...]:
        """Attention probabilities as L tensors [1, H, T, T] (rows = queries): the format
        bertviz's ``head_view`` / ``model_view`` take. A clear error if the trace kept none."""
        attn = self._attention_tensor()
        return tuple(attn[block][None] for block in range(attn.shape[0]))

    def head_stats(self) -> dict[str, np.ndarray]:
        """Every head's role scores and mean entropy, ``{name: float32 [L, H]}``
        (:func:`layerscope.engine.analyses.attention.head_stats`)."""
        from layerscope.engine.analyses.attention import head_stats

        cached = self.__dict__.get("_head_stats")  # the same for every call on this trace
        if cached is None:
            cached = self.__dict__["_head_stats"] = head_stats(self._attention_tensor(), self.ids)
        return dict(cached)

    def answer_id(self, position: int, target_id: int | None = None) -> int:
        """``target_id``, or the token the final layer ranks first at ``position``."""
        self.check_cell(None, position)
        return int(self.lens.top_ids[-1, position, 0]) if target_id is None else int(target_id)

    def _attention_tensor(self) -> torch.Tensor:
        """[L, H, T, T] float32 from the capture, or from a saved trace's ``attn`` extra."""
        if self.capture is not None and self.capture.attn is not None:
            return self.capture.attn.float()
        saved = getattr(self, "extras", {}).get("attn")
        if saved is not None:
            return torch.as_tensor(np.asarray(saved, dtype=np.float32))
        raise InputError(
            "this trace kept no attention patterns; trace again with attention=True and "
            "keep_capture=True"
        )

    def nbytes(self) -> int:
        """Approximate memory held by this trace."""
        return self.lens.nbytes() + (self.capture.nbytes() if self.capture is not None else 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``trace --json`` schema, documented in the README).

        Timings are left out on purpose: same model, input, settings and seed give the same dict.
        """
        return {
            "model": self.model_name,
            "tokens": self.tokens,
            "n_prompt": self.n_prompt,
            "layers": list(self.layers),
            "lens": {name: BY_NAME[name].to_json(a) for name, a in self.lens.arrays().items()},
            "lock_in": self.lock_in().tolist(),
            "token_text": {str(i): t for i, t in sorted(self.token_text.items())},
            "settings": dict(self.settings),
        }

    # -- files and figures (implemented in trace_file, plots and export.html) ------------------

    def save(self, path: str | os.PathLike[str], *, attention: bool = False) -> Path:
        """Write this trace to a file (``*.lstrace.json``, ``docs/trace-format.md``); with
        ``attention`` the attention patterns go in too. :meth:`load` reads it back exactly."""
        from layerscope.engine.trace_file import save_trace

        return save_trace(self, path, attention=attention)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """A trace saved by :meth:`save` (no activations, no model); a clear
        :class:`~layerscope.errors.TraceFileError` if the file is corrupt or from a newer
        version."""
        from layerscope.engine.trace_file import load_trace

        return load_trace(path)

    def plot_heatmap(self, metric: str = "final_prob") -> go.Figure:
        """A Plotly heatmap of one lens statistic, layers × positions
        (:func:`layerscope.engine.plots.heatmap`)."""
        from layerscope.engine import plots

        return plots.heatmap(self, metric)

    def plot_stripes(self) -> go.Figure:
        """The confidence stripes: per position, the final answer's rank at every layer."""
        from layerscope.engine import plots

        return plots.stripes(self)

    def plot_heads(self, position: int | None = None, target_id: int | None = None) -> go.Figure:
        """Each head's direct logit contribution to ``target_id`` (default: the final answer) at
        ``position`` (default: the last); needs the activations and the model."""
        from layerscope.engine import plots
        from layerscope.engine.analyses.heads import head_logit_lens

        if self.capture is None or self.model is None:
            raise InputError(
                "head contributions need the activations and the model; trace again with a "
                "model (keep_capture=True)"
            )
        position = len(self.ids) - 1 if position is None else position
        target = self.answer_id(position, target_id)
        cap = self.capture
        hl = head_logit_lens(self.model, cap.resid, cap.head_out, position, target)
        ids = {target, *np.unique(hl.top_ids).tolist()}
        text = {i: self.token_text.get(i) or self.model.tokenizer.token_text(i) for i in ids}
        return plots.head_contributions(hl, text)

    def plot_attention(self, block: int, head: int) -> go.Figure:
        """The attention pattern of ``head`` in ``block`` (queries × keys)."""
        from layerscope.engine import plots

        return plots.attention(self, block, head)

    def save_html(self, path: str | os.PathLike[str]) -> Any:
        """One self-contained HTML file of the explorer for this trace
        (:func:`layerscope.engine.export.html.save_html`)."""
        from layerscope.engine.export import html

        return html.save_html(self, path)

    def show(self) -> Any:
        """The explorer for this trace, inline in a notebook
        (:func:`layerscope.engine.export.html.show`)."""
        from layerscope.engine.export import html

        return html.show(self)


def lens_layer_names(model: LensModel) -> list[str]:
    """``h_0`` .. ``h_L``."""
    return [f"h_{i}" for i in range(model.info.n_lens_layers)]


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
    interventions: Sequence | Bound = (),
    on_token: TokenCallback | None = None,
    on_layer: LayerCallback | None = None,
) -> Trace:
    """Capture ``prompt`` (or raw ``ids``), generate ``generate`` tokens, and read every layer.

    ``interventions`` (:mod:`layerscope.engine.interventions`) edit the pass and are recorded in
    the trace's settings: a patched, ablated or steered run is an ordinary trace.
    """
    t0 = time.perf_counter()
    if generate < 0:
        raise InputError("the number of tokens to generate must be >= 0")
    if lens_top_k < 1:
        raise InputError("lens top-k must be >= 1")
    tokens = prompt_ids(model, prompt, ids, chat)
    check_length(model, len(tokens), generate)
    sampler = make_sampler(temperature, top_k, seed, model.device)
    bound = interventions if isinstance(interventions, Bound) else bind(model, interventions)
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
        interventions=bound,
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
    settings = {
        "chat": chat,
        "generate": generate,
        "temperature": temperature,
        "top_k": top_k,
        "seed": seed,
        "lens_top_k": lens_top_k,
        "attention": attention,
        "raw_ids": ids is not None,
        "interventions": [iv.model_dump(mode="json") for r in bound.rows for iv in r],
    }
    t4 = time.perf_counter()
    return Trace(
        model_name=model.info.name,
        ids=cap.ids,
        n_prompt=len(tokens),
        layers=lens_layer_names(model),
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
