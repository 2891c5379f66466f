"""Checkpoints between the blocks of every forward pass: where a server lets quick work in.

A long job (a trace, a sweep, attribution) runs many blocks; :func:`between_blocks` calls ``fn``
before each block of ``model`` for as long as it is installed. The server's worker uses it to
answer quick requests that only read stored results (a cell's top-k, the per-head lens) without
waiting for the whole job, and to stop a job whose client has gone (``fn`` may raise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from layerscope.models.base import LensModel


@contextmanager
def between_blocks(model: LensModel, fn: Callable[[], None]) -> Iterator[None]:
    """Call ``fn()`` (gradients off) before every block of every forward pass of ``model``."""

    def pre(module: torch.nn.Module, args: tuple) -> None:
        with torch.no_grad():
            fn()

    handles = [block.register_forward_pre_hook(pre) for block in model.blocks]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says a device (or the host) ran out of memory."""
    return isinstance(exc, MemoryError | torch.OutOfMemoryError)


def release_memory() -> None:
    """Give cached allocator memory back after an out-of-memory error."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
