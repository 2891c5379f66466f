"""One pass (prefill plus optional KV-cached generation) that records every hook point.

The recording and any interventions go through the one installer, :class:`~layerscope.engine.
hooks.Hooks`; every new position is recorded as it is produced, so prompt + generation needs no
second pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from layerscope.engine.interventions import Bound, bind, hooks_for
from layerscope.models.base import LensModel

#: what a capture records: the residual stream through ``resid_pre``[0] and every ``resid_post``
CAPTURED = ("head_out", "attn_out", "mlp_post", "mlp_out", "resid_post")


@dataclass
class Capture:
    """Everything one pass recorded, batch dimension removed, on the model's device.

    ``resid`` holds h_0 .. h_L; the block-indexed points hold one entry per block.
    """

    ids: list[int]
    resid: torch.Tensor  # [L+1, T, d]: h_0 .. h_L
    head_out: torch.Tensor  # [L, T, H, dh] per-head outputs before W_O
    attn_out: torch.Tensor  # [L, T, d] attention's contribution
    mlp_post: torch.Tensor  # [L, T, d_mlp] neuron activations
    mlp_out: torch.Tensor  # [L, T, d] the MLP's contribution
    attn: torch.Tensor | None  # [L, H, T, T] attention probabilities (rows = queries)
    logits: torch.Tensor  # [V] float32 final logits at the last position

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    @property
    def resid_mid(self) -> torch.Tensor:
        """[L, T, d]: resid_pre + attn_out of every block."""
        return self.resid[:-1] + self.attn_out

    def point(self, name: str) -> torch.Tensor:
        """Any hook point of every block, [L, T, ...]."""
        if name == "resid_pre":
            return self.resid[:-1]
        if name == "resid_post":
            return self.resid[1:]
        return getattr(self, name)

    def nbytes(self) -> int:
        """Bytes held by the recorded tensors."""
        tensors = [self.resid, self.head_out, self.attn_out, self.mlp_post, self.mlp_out]
        tensors.append(self.logits)
        if self.attn is not None:
            tensors.append(self.attn)
        return sum(t.numel() * t.element_size() for t in tensors)


def _assemble_attention(steps: Sequence[list[torch.Tensor]], total: int) -> torch.Tensor:
    """Place each step's attention rows [L][1,H,t,k] into one [L, H, T, T] tensor."""
    first = steps[0][0]
    n_blocks, n_heads = len(steps[0]), first.shape[1]
    out = first.new_zeros((n_blocks, n_heads, total, total))
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
    interventions: Sequence | Bound = (),
    generate: int = 0,
    sampler: Sampler | None = None,
    stop_ids: frozenset[int] = frozenset(),
    on_token: PositionCallback | None = None,
) -> Capture:
    """Run ``ids`` through ``model`` once, then generate up to ``generate`` tokens (KV cache).

    ``interventions`` (a list, see :mod:`layerscope.engine.interventions`, or one already bound)
    edit every pass, generation steps included. ``sampler`` maps the last logits [V] to the next
    id (greedy when None); generation stops early at any id in ``stop_ids`` (which is kept in the
    trace). ``on_token(position, id)`` is called for each generated token.
    """
    ids = list(ids)
    bound = interventions if isinstance(interventions, Bound) else bind(model, interventions)
    hooks = hooks_for(bound, record=[("resid_pre", 0), *CAPTURED])
    attn_steps: list[list[torch.Tensor]] = []
    pick = sampler or (lambda logits: int(torch.argmax(logits)))
    with torch.inference_mode(), hooks.installed():
        x = torch.tensor([ids], dtype=torch.long, device=model.device)
        out = model.forward(x, output_attentions=attention, last_logits_only=True)
        for _ in range(generate):
            if attention:
                attn_steps.append(out.attentions)
            next_id = pick(out.logits[0, -1].float())
            ids.append(next_id)
            if on_token is not None:
                on_token(len(ids) - 1, next_id)
            hooks.offset = len(ids) - 1
            x = torch.tensor([[next_id]], dtype=torch.long, device=model.device)
            out = model.forward(
                x, past=out.past, output_attentions=attention, last_logits_only=True
            )
            if next_id in stop_ids:
                break
        if attention:
            attn_steps.append(out.attentions)
        logits = out.logits[0, -1].float()
    post = hooks.stacked("resid_post")[:, 0]
    resid = torch.cat([hooks.values("resid_pre", 0)[0][None], post])
    attn = _assemble_attention(attn_steps, len(ids)) if attention else None
    return Capture(
        ids=ids,
        resid=resid,
        head_out=hooks.stacked("head_out")[:, 0],
        attn_out=hooks.stacked("attn_out")[:, 0],
        mlp_post=hooks.stacked("mlp_post")[:, 0],
        mlp_out=hooks.stacked("mlp_out")[:, 0],
        attn=attn,
        logits=logits,
    )
