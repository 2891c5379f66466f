"""An optional compiled CPU kernel for the lens: every full-vocabulary sum in one fused pass.

Eager PyTorch reads each [rows, V] logits chunk once per statistic (shift, exp, sum, product, sum,
two rank counts); ``torch.compile`` fuses them into one loop over the vocabulary per row, which on
CPU is several times faster. Compiling costs seconds (≈20 s cold, a few with torch's on-disk cache),
so it is a process-wide switch for long-running processes — the server and the benchmarks turn it
on, one-shot CLI traces do not (``layerscope trace --compiled`` does). Results agree with the eager
path to float32 rounding (sums are taken in another order); within one setting they are
deterministic. If compilation fails (no C++ compiler, say) the eager path is used and a warning says
so.
"""

from __future__ import annotations

import logging
import threading

import torch

log = logging.getLogger("layerscope.engine")

_lock = threading.Lock()
_kernel = None  # the compiled function, kept once built
_on = False


def _row_sums(
    z: torch.Tensor, m: torch.Tensor, z_tok: torch.Tensor, p_final: torch.Tensor | None
) -> tuple[torch.Tensor, ...]:
    """Per row of logits z [r, V] with row maxima m [r, 1] and token logits z_tok [r, 2]:
    sum exp(z - m), sum exp(z - m)·(z - m), the two counts of larger logits, and (softcapped
    models) p_final · (z - m)."""
    s = z - m
    e = torch.exp(s)
    sums = (
        e.sum(dim=1),
        (e * s).sum(dim=1),
        (z > z_tok[:, 0:1]).sum(dim=1),
        (z > z_tok[:, 1:2]).sum(dim=1),
    )
    if p_final is None:
        return sums
    return (*sums, (p_final * s).sum(dim=1))


def enable() -> bool:
    """Compile and warm the kernel (both variants); True if the fused path is now in use."""
    global _kernel, _on
    with _lock:
        if _kernel is not None:
            _on = True
            return True
        try:
            kernel = torch.compile(_row_sums, dynamic=True)
            z = torch.randn(6, 1000)
            m = z.amax(dim=1, keepdim=True)
            with torch.inference_mode():
                kernel(z, m, z[:, :2].clone(), None)
                kernel(z, m, z[:, :2].clone(), torch.rand(6, 1000))
        except Exception as exc:  # any compiler failure: stay on the eager path
            log.warning("fused lens kernel unavailable, using eager reductions: %s", exc)
            return False
        _kernel, _on = kernel, True
        return True


def disable() -> None:
    """Back to the eager path (the compiled kernel is kept: enabling again is instant)."""
    global _on
    with _lock:
        _on = False


def active(device: torch.device) -> bool:
    """Whether lens reductions on ``device`` use the fused kernel."""
    return _on and device.type == "cpu"


def row_sums(
    z: torch.Tensor, m: torch.Tensor, z_tok: torch.Tensor, p_final: torch.Tensor | None = None
) -> tuple[torch.Tensor, ...]:
    """The fused kernel (call only when :func:`active`)."""
    assert _on and _kernel is not None, "fused kernel not enabled"
    return _kernel(z, m, z_tok, p_final)
