"""One thread owns the model; jobs wait in a bounded queue and get a clear "busy" past it."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class BusyError(Exception):
    """The worker's queue is full; try again when the current jobs finish."""


class Cancelled(Exception):
    """Raised inside a job (from a streaming callback) when its client has gone away."""


class ModelWorker:
    """Runs model jobs one at a time on a dedicated thread.

    ``max_pending`` bounds the jobs waiting behind the running one; a submission past it raises
    :class:`BusyError` at once instead of queueing without limit.
    """

    def __init__(self, max_pending: int = 2) -> None:
        self.max_pending = max_pending
        self._queue: queue.Queue[
            tuple[Callable[[], Any], asyncio.Future, asyncio.AbstractEventLoop]
        ]
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._inflight = 0  # queued + running
        self._running = False
        self._thread = threading.Thread(target=self._loop, name="layerscope-model", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """Whether a job is running now."""
        return self._running

    @property
    def pending(self) -> int:
        """Jobs waiting behind the running one."""
        return max(0, self._inflight - (1 if self._running else 0))

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the model thread and await its result (raises BusyError when full)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        with self._lock:
            if self._inflight > self.max_pending:
                raise BusyError("The model is busy with other requests; try again in a moment.")
            self._inflight += 1
            self._queue.put((fn, fut, loop))
        return await fut

    def close(self) -> None:
        """Stop the thread after the current job."""
        self._queue.put(None)  # type: ignore[arg-type]

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, fut, loop = item
            with self._lock:
                self._running = True
            ok, value = True, None
            try:
                value = fn()
            except BaseException as exc:  # handed to the awaiting coroutine
                ok, value = False, exc
            with self._lock:  # free the slot before anyone hears the answer
                self._running = False
                self._inflight -= 1
            with contextlib.suppress(RuntimeError):  # that event loop is gone (shutdown)
                loop.call_soon_threadsafe(_set_result if ok else _set_exception, fut, value)


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
