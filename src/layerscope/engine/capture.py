"""One pass (prefill plus optional KV-cached generation) that records every hook point.

Hook points, by name (``edit`` sees them in this order within a block):
- ``resid_pre``  – the residual stream entering block l ([B, T, d]); for l = 0 this is ``h_0``;
- ``head_out``   – per-head attention outputs of block l before the output projection
  ([B, T, H, dh]);
- ``mlp_out``    – the MLP's contribution to the residual ([B, T, d]);
- ``resid_post`` – the stream after block l, i.e. ``h_{l+1}`` ([B, T, d]).
An ``edit(point, layer, tensor)`` callback may return a tensor of the same shape to replace the
value (that is how interventions work) or None to keep it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from layerscope.models.base import LensModel

Edit = Callable[[str, int, torch.Tensor], torch.Tensor | None]


@dataclass
class Capture:
    """Everything one pass recorded, batch dimension removed, on the model's device."""

    ids: list[int]
    resid: torch.Tensor  # [L+1, T, d]: h_0 .. h_L
    head_out: torch.Tensor  # [L, T, H, dh]
    mlp_out: torch.Tensor  # [L, T, d]
    attn: torch.Tensor | None  # [L, H, T, T] attention probabilities (rows = queries)
    logits: torch.Tensor  # [V] float32 final logits at the last position

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    def nbytes(self) -> int:
        """Bytes held by the recorded tensors."""
        tensors = [self.resid, self.head_out, self.mlp_out, self.logits]
        if self.attn is not None:
            tensors.append(self.attn)
        return sum(t.numel() * t.element_size() for t in tensors)


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, tuple | list) else x


class _Recorder:
    """Installs the hooks on a model and accumulates what each step records."""

    def __init__(self, model: LensModel, edit: Edit | None) -> None:
        self.model = model
        self.edit = edit
        n = model.info.n_layers
        self.h0: list[torch.Tensor] = []
        self.post: list[list[torch.Tensor]] = [[] for _ in range(n)]
        self.heads: list[list[torch.Tensor]] = [[] for _ in range(n)]
        self.mlps: list[list[torch.Tensor]] = [[] for _ in range(n)]

    def _apply(self, point: str, layer: int, x: torch.Tensor) -> torch.Tensor | None:
        if self.edit is None:
            return None
        new = self.edit(point, layer, x)
        if new is not None and new.shape != x.shape:
            raise ValueError(f"edit at {point}[{layer}] changed shape {x.shape} -> {new.shape}")
        return new

    @contextmanager
    def installed(self) -> Iterator[_Recorder]:
        handles = []
        for layer, block in enumerate(self.model.blocks):
            handles.append(
                block.register_forward_pre_hook(self._block_pre(layer), with_kwargs=True)
            )
            handles.append(block.register_forward_hook(self._block_post(layer)))
            handles.append(
                self.model.head_out_proj(layer).register_forward_pre_hook(self._heads(layer))
            )
            handles.append(self.model.mlp(layer).register_forward_hook(self._mlp(layer)))
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def _block_pre(self, layer: int):
        def hook(module, args, kwargs):
            if args:
                x = args[0]
                new = self._apply("resid_pre", layer, x)
                if new is not None:
                    args = (new, *args[1:])
                    x = new
            else:
                x = kwargs["hidden_states"]
                new = self._apply("resid_pre", layer, x)
                if new is not None:
                    kwargs = {**kwargs, "hidden_states": new}
                    x = new
            if layer == 0:
                self.h0.append(x[0].detach())
            return args, kwargs

        return hook

    def _block_post(self, layer: int):
        def hook(module, args, output):
            x = _first(output)
            new = self._apply("resid_post", layer, x)
            if new is not None:
                output = (new, *output[1:]) if isinstance(output, tuple) else new
                x = new
            self.post[layer].append(x[0].detach())
            return output

        return hook

    def _heads(self, layer: int):
        n_heads, d_head = self.model.info.n_heads, self.model.info.d_head

        def hook(module, args):
            x = args[0]
            b, t, _ = x.shape
            per_head = x.view(b, t, n_heads, d_head)
            new = self._apply("head_out", layer, per_head)
            if new is not None:
                per_head = new
                args = (new.reshape(b, t, n_heads * d_head), *args[1:])
            self.heads[layer].append(per_head[0].detach().clone())
            return args

        return hook

    def _mlp(self, layer: int):
        def hook(module, args, output):
            x = _first(output)
            new = self._apply("mlp_out", layer, x)
            if new is not None:
                output = (new, *output[1:]) if isinstance(output, tuple) else new
                x = new
            self.mlps[layer].append(x[0].detach())
            return output

        return hook

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(resid [L+1,T,d], head_out [L,T,H,dh], mlp_out [L,T,d]) over all recorded steps."""
        resid = torch.stack([torch.cat(self.h0)] + [torch.cat(p) for p in self.post])
        heads = torch.stack([torch.cat(h) for h in self.heads])
        mlps = torch.stack([torch.cat(m) for m in self.mlps])
        return resid, heads, mlps


def _assemble_attention(steps: Sequence[list[torch.Tensor]], total: int) -> torch.Tensor:
    """Place each step's attention rows [L][1,H,t,k] into one [L, H, T, T] tensor."""
    first = steps[0][0]
    n_layers, n_heads = len(steps[0]), first.shape[1]
    out = first.new_zeros((n_layers, n_heads, total, total))
    row = 0
    for layers in steps:
        t_new, t_keys = layers[0].shape[2], layers[0].shape[3]
        for l_idx, a in enumerate(layers):
            out[l_idx, :, row : row + t_new, :t_keys] = a[0]
        row += t_new
    return out


PositionCallback = Callable[[int, int], None]  # (position, token id)
Sampler = Callable[[torch.Tensor], int]


def capture(
    model: LensModel,
    ids: Sequence[int],
    *,
    attention: bool = True,
    edit: Edit | None = None,
    generate: int = 0,
    sampler: Sampler | None = None,
    stop_ids: frozenset[int] = frozenset(),
    on_token: PositionCallback | None = None,
) -> Capture:
    """Run ``ids`` through ``model`` once, then generate up to ``generate`` tokens (KV cache).

    Every new position is recorded as it is produced, so prompt + generation needs no second pass.
    ``sampler`` maps the last logits [V] to the next id (greedy when None); generation stops early
    at any id in ``stop_ids`` (which is kept in the trace). ``on_token(position, id)`` is called for
    each generated token.
    """
    ids = list(ids)
    recorder = _Recorder(model, edit)
    attn_steps: list[list[torch.Tensor]] = []
    pick = sampler or (lambda logits: int(torch.argmax(logits)))
    with torch.inference_mode(), recorder.installed():
        x = torch.tensor([ids], dtype=torch.long, device=model.device)
        out = model.forward(x, output_attentions=attention, last_logits_only=True)
        for _ in range(generate):
            if attention:
                attn_steps.append(out.attentions)
            next_id = pick(out.logits[0, -1].float())
            ids.append(next_id)
            if on_token is not None:
                on_token(len(ids) - 1, next_id)
            x = torch.tensor([[next_id]], dtype=torch.long, device=model.device)
            out = model.forward(
                x, past=out.past, output_attentions=attention, last_logits_only=True
            )
            if next_id in stop_ids:
                break
        if attention:
            attn_steps.append(out.attentions)
        logits = out.logits[0, -1].float()
    resid, heads, mlps = recorder.stacked()
    attn = _assemble_attention(attn_steps, len(ids)) if attention else None
    return Capture(ids=ids, resid=resid, head_out=heads, mlp_out=mlps, attn=attn, logits=logits)
