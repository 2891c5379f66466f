"""The logit lens: every layer read through the model's own final norm and unembedding.

For each (layer, position) it keeps the top-k ids and probabilities, the rank and probability of the
final layer's argmax token and of the actual next token, the entropy and KL(final ‖ layer). The
(L+1) × T × V logits are never held at once: rows are unembedded in chunks and reduced at once.

Cost notes (CPU). The matrix product is the floor; everything after it is memory traffic, so:
- rows are unembedded ``chunk_rows`` at a time into one reused buffer (no fresh allocation, no page
  faults), and then reduced a few rows at a time (``REDUCE_ROWS``) so that the slab being reduced
  stays in the core's L2 cache across the handful of passes the statistics need;
- top-k is two-staged: the maximum of every ``TOPK_BLOCK``-wide vocabulary block, then an exact
  top-k over the k best blocks only (every top-k value lies in one of them);
- a rank is read off the top-k when the token is in it, and counted over the vocabulary otherwise;
- KL(final ‖ layer) needs only ``p_final · z_layer``; without a softcap that is
  ``(Wᵀ p_final) · norm(h)``, a d-sized dot product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from layerscope.engine import fused
from layerscope.engine.statistics import NAMES
from layerscope.models.base import LensModel

LayerCallback = Callable[[int, dict[str, np.ndarray]], None]
#: rows unembedded by one matrix product (a [rows, V] float32 buffer, reused); large enough that
#: the unembedding matrix is streamed from memory only a few times per trace
DEFAULT_CHUNK_ROWS = 1024
#: upper bound on that buffer, whatever ``chunk_rows`` asks for (large vocabularies get fewer rows)
MAX_CHUNK_BYTES = 256 * 2**20
#: rows per thread reduced together on CPU: slabs that mostly stay in cache between passes, yet
#: few enough kernel launches that a busy machine (threads preempted at barriers) is not punished
REDUCE_ROWS_PER_THREAD = 32
#: vocabulary block width of the two-stage top-k
TOPK_BLOCK = 512


class Lens:
    """Lens statistics: one numpy array per :data:`~layerscope.engine.statistics.STATISTICS`
    entry, indexed [layer, position(, k)], read as attributes (``lens.final_rank``)."""

    def __init__(self, **arrays: np.ndarray) -> None:
        if set(arrays) != set(NAMES):
            raise ValueError(f"a Lens needs exactly the statistics {NAMES}; got {sorted(arrays)}")
        self._arrays = {name: arrays[name] for name in NAMES}

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("_arrays")
        if arrays is not None and name in arrays:
            return arrays[name]
        raise AttributeError(name)

    @property
    def n_lens_layers(self) -> int:
        """Lens layers (L + 1)."""
        return self.top_ids.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """Statistic name -> array, in declaration order."""
        return dict(self._arrays)

    def layer(self, layer: int) -> dict[str, np.ndarray]:
        """All arrays sliced to one layer."""
        return {name: a[layer] for name, a in self._arrays.items()}

    def lock_in(self) -> np.ndarray:
        """Per position, the first layer from which the final argmax keeps rank 1 to the end."""
        top1 = self.final_rank == 1  # [L+1, T]
        trailing = np.cumprod(top1[::-1], axis=0).sum(axis=0)
        return (self.n_lens_layers - trailing).astype(np.int32)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())


def layer_logits(
    model: LensModel, resid: torch.Tensor, layer: int, positions: slice = slice(None)
) -> torch.Tensor:
    """Full lens logits [T, V] (float32) of one layer, softcap included (only ``positions``'
    rows if given: one cell costs one row, not the whole layer)."""
    with torch.inference_mode():
        return model.unembed(model.final_norm(resid[layer, positions])).float()


class _Unembedder:
    """Unembeds rows into one reused float32 buffer [rows, V] (padded to whole top-k blocks).

    The padding columns hold -inf: they never win a block maximum and are never read otherwise.
    """

    def __init__(self, model: LensModel, rows: int, device: torch.device) -> None:
        self.w = model.unembed_weight
        self.bias = model.unembed_bias
        vocab = self.w.shape[0]
        self.block = TOPK_BLOCK
        padded = -(-vocab // self.block) * self.block
        self.full = torch.empty((rows, padded), dtype=torch.float32, device=device)
        self.full[:, vocab:] = -torch.inf
        self.vocab = vocab

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of rows ``x`` [n, d] as a view [n, V] of the buffer (valid until next call)."""
        out = self.full[: x.shape[0], : self.vocab]
        if self.w.dtype == torch.float32 and x.dtype == torch.float32:
            if self.bias is None:
                torch.mm(x, self.w.t(), out=out)
            else:
                torch.addmm(self.bias, x, self.w.t(), out=out)
        else:
            out.copy_(torch.nn.functional.linear(x, self.w, self.bias))
        return out

    def blocks(self, lo: int, hi: int) -> torch.Tensor:
        """Rows ``lo:hi`` of the buffer as [n, V / block, block] (padding included)."""
        rows = self.full[lo:hi]
        return rows.view(rows.shape[0], -1, self.block)


class _Raw:
    """Per-row raw reductions of n rows, filled slab by slab; turned into statistics per chunk."""

    def __init__(self, n: int, k: int, device: torch.device) -> None:
        def new(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.empty(shape, dtype=dtype, device=device)

        self.top_vals = new(n, k)
        self.top_pos = new(n, k, dtype=torch.long)  # position in the candidate blocks (or id)
        self.top_blocks = new(n, k, dtype=torch.long)  # candidate blocks (unused: plain top-k)
        self.z_tok = new(n, 2)  # logits of the final argmax and of the next token
        self.count = new(n, 2)  # logits strictly greater than those; -1 = read off the top-k
        self.total = new(n)  # sum of exp(z - max)
        self.e_dot_s = new(n)  # sum of exp(z - max) * (z - max)
        self.pf_dot = new(n)  # p_final · (z - max), softcapped models only


class _Reducer:
    """Reduces slabs of logits [r, V] to raw per-row sums in few full-vocabulary passes.

    Passes over a slab: block maxima, the final and next-token counts (only where a token is not
    in the top-k), z - max, exp, sum, product, sum. The slab is overwritten.
    """

    def __init__(
        self, k: int, vocab: int, rows: int, block: int, softcap: float | None, dev: torch.device
    ) -> None:
        self.k = k
        self.block = block
        self.softcap = softcap
        self.scratch = torch.empty((rows, vocab), dtype=torch.float32, device=dev)
        self.two_stage = k * 4 <= -(-vocab // block)

    def reduce(
        self,
        raw: _Raw,
        lo: int,
        hi: int,
        z: torch.Tensor,
        zb: torch.Tensor,
        tok_idx: torch.Tensor,
        count_final: bool,
        p_final: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fill ``raw`` rows lo:hi from logits ``z`` [r, V] (block view ``zb``).

        ``tok_idx`` [r, 2]: ids of the final argmax (ignored when not ``count_final``) and of the
        next token (clamped to >= 0). Returns exp(z - max) [r, V], valid until the next call.
        """
        n_rows = hi - lo
        vals, z_tok = self._top_k(raw, lo, hi, z, zb, tok_idx)
        m = vals[:, :1]
        if not count_final:
            z_tok[:, :1] = m
        # A logit greater than one that is >= the k-th largest is itself among the top k: count
        # over the whole vocabulary only where a token is below the top k.
        below = z_tok < vals[:, -1:]
        count = raw.count[lo:hi]
        count.fill_(-1)
        mask = self.scratch[:n_rows]
        for j in (0, 1):
            if bool(below[:, j].any()):
                torch.gt(z, z_tok[:, j : j + 1], out=mask)  # 0/1 floats: sums exact below 2**24
                torch.sum(mask, dim=1, out=count[:, j])
        s = z.sub_(m)  # shifted logits s = z - max, in place
        e = torch.exp(s, out=mask)
        torch.sum(e, dim=1, out=raw.total[lo:hi])
        if p_final is not None:
            torch.sum(p_final * s, dim=1, out=raw.pf_dot[lo:hi])
        torch.sum(s.mul_(e), dim=1, out=raw.e_dot_s[lo:hi])
        return e

    def _top_k(
        self, raw: _Raw, lo: int, hi: int, z: torch.Tensor, zb: torch.Tensor, tok_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Softcap ``z`` in place, fill the top-k and the two token logits of rows lo:hi."""
        n_rows = hi - lo
        if self.softcap:
            z.div_(self.softcap).tanh_().mul_(self.softcap)
        vals = raw.top_vals[lo:hi]
        if self.two_stage:
            # Each of the k largest logits is >= the k-th largest block maximum, so it lies in
            # one of the k blocks with the largest maxima: an exact top-k over those suffices.
            width = self.block
            blocks = raw.top_blocks[lo:hi]
            torch.topk(zb.amax(dim=2), self.k, dim=1, sorted=False, out=(z.new_empty(0), blocks))
            cand = zb.gather(1, blocks[:, :, None].expand(n_rows, self.k, width))
            torch.topk(cand.view(n_rows, -1), self.k, dim=1, out=(vals, raw.top_pos[lo:hi]))
        else:
            torch.topk(z, self.k, dim=1, out=(vals, raw.top_pos[lo:hi]))
        z_tok = raw.z_tok[lo:hi]
        torch.gather(z, 1, tok_idx, out=z_tok)
        return vals, z_tok

    def reduce_fused(
        self,
        raw: _Raw,
        lo: int,
        hi: int,
        z: torch.Tensor,
        zb: torch.Tensor,
        tok_idx: torch.Tensor,
        p_final: torch.Tensor | None = None,
    ) -> None:
        """Like :meth:`reduce` for non-final rows, with every vocabulary sum in one fused pass."""
        vals, z_tok = self._top_k(raw, lo, hi, z, zb, tok_idx)
        sums = fused.row_sums(z, vals[:, :1], z_tok, p_final)
        raw.total[lo:hi] = sums[0]
        raw.e_dot_s[lo:hi] = sums[1]
        raw.count[lo:hi, 0] = sums[2]
        raw.count[lo:hi, 1] = sums[3]
        if p_final is not None:
            raw.pf_dot[lo:hi] = sums[4]

    def stats(self, raw: _Raw, lo: int, hi: int, has_next: torch.Tensor) -> dict[str, torch.Tensor]:
        """Lens statistics of rows lo:hi from their raw sums (plus ``lse``)."""
        vals = raw.top_vals[lo:hi]
        pos = raw.top_pos[lo:hi]
        if self.two_stage:
            width = self.block
            ids = raw.top_blocks[lo:hi].gather(1, pos // width) * width + pos % width
        else:
            ids = pos
        z_tok = raw.z_tok[lo:hi]
        count = raw.count[lo:hi]
        from_top = (vals[:, None, :] > z_tok[:, :, None]).sum(dim=2)
        rank = torch.where(count >= 0, count.long(), from_top).to(torch.int32) + 1
        m = vals[:, :1]
        log_total = torch.log(raw.total[lo:hi])[:, None]
        lse = m + log_total
        p_tok = torch.exp(z_tok - lse)
        e_dot_s = raw.e_dot_s[lo:hi, None]
        entropy = (log_total - e_dot_s / raw.total[lo:hi, None])[:, 0]
        return {
            "top_ids": ids.to(torch.int32),
            "top_probs": torch.exp(vals - lse),
            "final_rank": rank[:, 0],
            "final_prob": p_tok[:, 0],
            "next_rank": torch.where(has_next, rank[:, 1], -1),
            "next_prob": torch.where(has_next, p_tok[:, 1], torch.nan),
            "entropy": entropy.clamp(min=0),
            "lse": lse[:, 0],
        }


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(lo + size, n)


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
    chunk_rows = max(1, min(chunk_rows, MAX_CHUNK_BYTES // (4 * (vocab + TOPK_BLOCK))))
    # On CPU, reduce a few rows per thread at a time (slabs that stay in cache between passes);
    # a GPU takes the whole chunk.
    if dev.type == "cpu":
        sub_rows = min(chunk_rows, REDUCE_ROWS_PER_THREAD * max(1, torch.get_num_threads()))
    else:
        sub_rows = chunk_rows
    next_tok = torch.zeros(n_tok, dtype=torch.long, device=dev)
    has_next = torch.zeros(n_tok, dtype=torch.bool, device=dev)
    if n_tok > 1:
        next_tok[:-1] = torch.as_tensor(list(ids[1:]), dtype=torch.long, device=dev)
        has_next[:-1] = True

    with torch.inference_mode():
        normed = model.final_norm(resid)  # [L+1, T, d], model dtype
        n_rows = (n_lens - 1) * n_tok
        unembed = _Unembedder(model, min(chunk_rows, max(n_tok, n_rows)), dev)
        reducer = _Reducer(k, vocab, sub_rows, unembed.block, softcap, dev)

        # Final layer first: its argmax and distribution are what every other layer is compared to.
        raw = _Raw(n_tok, k, dev)
        tok_idx = torch.stack([next_tok, next_tok], dim=1)
        pf_parts: list[torch.Tensor] = []  # softcap: p_final itself
        u_parts: list[torch.Tensor] = []  # no softcap: Wᵀ p_final [rows, d] and p_final · b
        pb_parts: list[torch.Tensor] = []
        w32 = None if softcap else model.unembed_weight.float()
        b = model.unembed_bias
        b32 = b.float() if b is not None and not softcap else None
        for start, stop in _chunks(n_tok, chunk_rows):
            z_chunk = unembed(normed[-1, start:stop])
            for lo, hi in _chunks(stop - start, sub_rows):
                rows = slice(start + lo, start + hi)
                e = reducer.reduce(
                    raw,
                    rows.start,
                    rows.stop,
                    z_chunk[lo:hi],
                    unembed.blocks(lo, hi),
                    tok_idx[rows],
                    count_final=False,
                )
                probs = e / raw.total[rows, None]
                if softcap:
                    pf_parts.append(probs)
                else:
                    u_parts.append(probs @ w32)
                    if b32 is not None:
                        pb_parts.append(probs @ b32)
        del w32
        final = reducer.stats(raw, 0, n_tok, has_next)
        final_ids = final["top_ids"][:, 0].long()
        del final["lse"]
        final["kl_final"] = torch.zeros_like(final["entropy"])
        neg_h_final = -final["entropy"]
        p_final = torch.cat(pf_parts) if softcap else None
        u = None if softcap else torch.cat(u_parts)
        pf_bias = torch.cat(pb_parts) if pb_parts else None
        _emit(on_layer, n_lens - 1, final)

        # Rows of layers 0..L-1, flattened layer-major, unembedded chunk by chunk.
        flat = normed[:-1].reshape(-1, normed.shape[-1])
        pos = torch.arange(n_rows, device=dev) % n_tok
        tok_idx = torch.stack([final_ids[pos], next_tok[pos]], dim=1)
        raw = _Raw(n_rows, k, dev)
        results: dict[str, list[torch.Tensor]] = {}
        emitted = 0
        use_fused = fused.active(dev)
        for start, stop in _chunks(n_rows, chunk_rows):
            z_chunk = unembed(flat[start:stop])
            if use_fused:  # the whole chunk in one fused pass
                reducer.reduce_fused(
                    raw,
                    start,
                    stop,
                    z_chunk,
                    unembed.blocks(0, stop - start),
                    tok_idx[start:stop],
                    None if p_final is None else p_final[pos[start:stop]],
                )
            for lo, hi in _chunks(0 if use_fused else stop - start, sub_rows):
                rows = slice(start + lo, start + hi)
                reducer.reduce(
                    raw,
                    rows.start,
                    rows.stop,
                    z_chunk[lo:hi],
                    unembed.blocks(lo, hi),
                    tok_idx[rows],
                    count_final=True,
                    p_final=None if p_final is None else p_final[pos[rows]],
                )
            part = reducer.stats(raw, start, stop, has_next[pos[start:stop]])
            rows_pos = pos[start:stop]
            if u is None:  # p_final · z = p_final · (z - max) + max
                pf_dot = raw.pf_dot[start:stop] + raw.top_vals[start:stop, 0]
            else:  # p_final · z = (Wᵀ p_final) · x (+ p_final · b)
                pf_dot = (u[rows_pos] * flat[start:stop].float()).sum(dim=1)
                if pf_bias is not None:
                    pf_dot = pf_dot + pf_bias[rows_pos]
            kl = neg_h_final[rows_pos] - pf_dot + part.pop("lse")
            part["kl_final"] = kl.clamp(min=0)
            for key, v in part.items():
                results.setdefault(key, []).append(v)
            while on_layer is not None and (emitted + 1) * n_tok <= stop:
                _emit_slice(on_layer, results, emitted, n_tok)
                emitted += 1

        stacked: dict[str, np.ndarray] = {}
        for key, final_v in final.items():
            body = torch.cat(results[key]) if results else final_v[:0]
            body = body.reshape(n_lens - 1, n_tok, *final_v.shape[1:])
            stacked[key] = torch.cat([body, final_v[None]]).cpu().numpy()
    return Lens(**{name: stacked[name] for name in NAMES})


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
