"""The logit lens: every layer read through the model's own final norm and unembedding.

For each (layer, position) it keeps the top-k ids and probabilities, the rank and probability of the
final layer's argmax token and of the actual next token, the entropy and KL(final ‖ layer). The
(L+1) × T × V logits are never held at once: rows are unembedded in chunks and reduced at once.

Cost notes (CPU): a full-vocabulary reduction costs about as much as the matrix product that made
the logits, so each chunk is reduced in as few passes as possible. KL(final ‖ layer) needs only
``p_final · z_layer``; without a softcap that is ``(Wᵀ p_final) · norm(h)``, a d-sized dot product.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from layerscope.models.base import LensModel

LayerCallback = Callable[[int, dict[str, np.ndarray]], None]
DEFAULT_CHUNK_ROWS = 256


@dataclass
class Lens:
    """Lens statistics, numpy arrays indexed [layer, position(, k)]."""

    top_ids: np.ndarray  # int32 [L+1, T, k]
    top_probs: np.ndarray  # float32 [L+1, T, k]
    final_rank: np.ndarray  # int32 [L+1, T], 1 = the final argmax is this layer's top-1
    final_prob: np.ndarray  # float32 [L+1, T]
    next_rank: np.ndarray  # int32 [L+1, T], -1 where the next token is unknown
    next_prob: np.ndarray  # float32 [L+1, T], nan where unknown
    entropy: np.ndarray  # float32 [L+1, T], nats
    kl_final: np.ndarray  # float32 [L+1, T], KL(final ‖ layer) in nats

    @property
    def n_layers(self) -> int:
        return self.top_ids.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """Field name -> array."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def layer(self, layer: int) -> dict[str, np.ndarray]:
        """All arrays sliced to one layer."""
        return {name: a[layer] for name, a in self.arrays().items()}

    def lock_in(self) -> np.ndarray:
        """Per position, the first layer from which the final argmax keeps rank 1 to the end."""
        top1 = self.final_rank == 1  # [L+1, T]
        trailing = np.cumprod(top1[::-1], axis=0).sum(axis=0)
        return (self.n_layers - trailing).astype(np.int32)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values())


def layer_logits(model: LensModel, resid: torch.Tensor, layer: int) -> torch.Tensor:
    """Full lens logits [T, V] (float32) of one layer, softcap included."""
    with torch.inference_mode():
        return model.unembed(model.final_norm(resid[layer])).float()


class _Reducer:
    """Reduces chunks of logits to lens statistics in as few full-vocabulary passes as it can."""

    def __init__(self, k: int, softcap: float | None) -> None:
        self.k = k
        self.softcap = softcap

    def reduce(
        self,
        z: torch.Tensor,
        final_ids: torch.Tensor | None,
        next_ids: torch.Tensor,
        p_final_dot: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        keep_probs: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Statistics of logits ``z`` [R, V] (float32, overwritten).

        ``final_ids`` [R] (None: this is the final layer, use its own argmax); ``next_ids`` [R]
        (-1 unknown); ``p_final_dot(z_shifted, m)`` returns ``p_final · z`` per row, or None for the
        final layer (KL 0).
        """
        if self.softcap:
            z.div_(self.softcap).tanh_().mul_(self.softcap)
        top_vals, top_ids = z.topk(self.k, dim=-1)
        if final_ids is None:
            final_ids = top_ids[:, 0]
        m = top_vals[:, :1]
        z_final = z.gather(1, final_ids[:, None])
        final_rank = (z > z_final).sum(dim=1, dtype=torch.int32) + 1
        has_next = next_ids >= 0
        safe_next = next_ids.clamp(min=0)[:, None]
        z_next = z.gather(1, safe_next)
        next_rank = (z > z_next).sum(dim=1, dtype=torch.int32) + 1
        z.sub_(m)  # z is now shifted: s = z - max
        e = torch.exp(z)
        total = e.sum(dim=1, keepdim=True)
        e_dot_s = torch.bmm(e[:, None, :], z[:, :, None])[:, 0]
        log_total = torch.log(total)
        lse = m + log_total
        entropy = (log_total - e_dot_s / total)[:, 0]
        out = {
            "top_ids": top_ids.to(torch.int32),
            "top_probs": torch.exp(top_vals - lse),
            "final_rank": final_rank,
            "final_prob": torch.exp(z_final - lse)[:, 0],
            "next_rank": torch.where(has_next, next_rank, -1),
            "next_prob": torch.where(has_next, torch.exp(z_next - lse)[:, 0], torch.nan),
            "entropy": entropy.clamp(min=0),
            "final_ids": final_ids,
            "lse": lse[:, 0],
        }
        if p_final_dot is None:
            out["kl_final"] = torch.zeros_like(entropy)
        else:
            out["pf_dot_z"] = p_final_dot(z, m)
        if keep_probs:
            out["probs"] = e.div_(total)
        return out


def compute_lens(
    model: LensModel,
    resid: torch.Tensor,
    ids: Sequence[int],
    k: int = 10,
    on_layer: LayerCallback | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Lens:
    """Lens statistics for residuals ``resid`` [L+1, T, d] of token ``ids``.

    ``on_layer(layer, arrays)`` is called as soon as each layer's statistics are ready (the final
    layer first, since every other layer is compared with it).
    """
    n_lens, n_tok, _ = resid.shape
    vocab = model.info.vocab_size
    k = max(1, min(k, vocab))
    dev = resid.device
    softcap = model.logit_softcap
    reducer = _Reducer(k, softcap)
    next_tok = torch.full((n_tok,), -1, dtype=torch.long, device=dev)
    if n_tok > 1:
        next_tok[:-1] = torch.as_tensor(list(ids[1:]), dtype=torch.long, device=dev)

    with torch.inference_mode():
        normed = model.final_norm(resid)  # [L+1, T, d], model dtype
        w = model.unembed_weight
        bias = model.unembed_bias

        def unembed(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.linear(x, w, bias).float()

        # Final layer first: its argmax and distribution are what every other layer is compared to.
        final_rows = max(1, chunk_rows)
        final_parts: list[dict[str, torch.Tensor]] = []
        u_parts: list[torch.Tensor] = []
        pf_parts: list[torch.Tensor] = []
        pb_parts: list[torch.Tensor] = []
        for start in range(0, n_tok, final_rows):
            sl = slice(start, start + final_rows)
            part = reducer.reduce(unembed(normed[-1, sl]), None, next_tok[sl], None, True)
            probs = part.pop("probs")
            if softcap:
                pf_parts.append(probs)
            else:
                u_parts.append(probs @ w.float())  # Wᵀ p_final, [rows, d]
                if bias is not None:
                    pb_parts.append(probs @ bias.float())
            final_parts.append(part)
        final = {key: torch.cat([p[key] for p in final_parts]) for key in final_parts[0]}
        final_ids = final["final_ids"]
        neg_h_final = -final["entropy"]
        if softcap:
            p_final = torch.cat(pf_parts)
        else:
            u = torch.cat(u_parts)
            pf_bias = torch.cat(pb_parts) if pb_parts else None

        results: dict[str, list[torch.Tensor]] = {}
        done_final = {key: v for key, v in final.items() if key not in ("final_ids", "lse")}
        _emit(on_layer, n_lens - 1, done_final)
        # Rows of layers 0..L-1, flattened layer-major, reduced in chunks.
        flat = normed[:-1].reshape(-1, normed.shape[-1])
        n_rows = flat.shape[0]
        pos = torch.arange(n_rows, device=dev) % n_tok
        emitted = 0
        for start in range(0, n_rows, chunk_rows):
            stop = min(start + chunk_rows, n_rows)
            rows = pos[start:stop]
            x = flat[start:stop]

            if softcap:

                def dot(z_shift, m, rows=rows):
                    pf = p_final[rows]
                    return torch.bmm(pf[:, None, :], z_shift[:, :, None])[:, 0, 0] + m[:, 0]
            else:

                def dot(z_shift, m, rows=rows, x=x):
                    d = (u[rows] * x.float()).sum(dim=1)
                    return d + pf_bias[rows] if pf_bias is not None else d

            part = reducer.reduce(unembed(x), final_ids[rows], next_tok[rows], dot)
            kl = neg_h_final[rows] - part.pop("pf_dot_z") + part.pop("lse")
            part["kl_final"] = kl.clamp(min=0)
            part.pop("final_ids")
            for key, v in part.items():
                results.setdefault(key, []).append(v)
            while on_layer is not None and (emitted + 1) * n_tok <= stop:
                _emit_slice(on_layer, results, emitted, n_tok)
                emitted += 1

        stacked: dict[str, np.ndarray] = {}
        for key, final_v in done_final.items():
            body = torch.cat(results[key]) if results else final_v[:0]
            body = body.reshape(n_lens - 1, n_tok, *final_v.shape[1:])
            stacked[key] = torch.cat([body, final_v[None]]).cpu().numpy()
    return Lens(**{f.name: stacked[f.name] for f in fields(Lens)})


def _emit(on_layer: LayerCallback | None, layer: int, arrays: dict[str, torch.Tensor]) -> None:
    if on_layer is not None:
        on_layer(layer, {key: v.cpu().numpy() for key, v in arrays.items()})


def _emit_slice(
    on_layer: LayerCallback, results: dict[str, list[torch.Tensor]], layer: int, n_tok: int
) -> None:
    """Emit one finished layer from the chunk lists (cheap views, then one copy)."""
    sl = slice(layer * n_tok, (layer + 1) * n_tok)
    arrays = {key: torch.cat(parts)[sl] for key, parts in results.items()}
    _emit(on_layer, layer, arrays)
