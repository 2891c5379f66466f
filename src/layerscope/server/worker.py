"""The model worker: one thread owns the model and serves connections fairly.

Each connection (a *client*) has its own queue; the worker takes the next job from each client in
turn (round robin), so one client's burst cannot starve the others. *Interactive* jobs (quick
reads of stored results: a cell's top-k, the per-head lens) go ahead of the queues, and also run at
the running job's *checkpoints* (between the blocks of its forward passes, and whenever it streams
a frame), so they never wait behind a whole trace. Jobs of a batchable type that wait at the heads
of several clients' queues run as one batch (:class:`~layerscope.server.registry.Batching`).

Admission is bounded twice: per client (``Limits.client_pending``) and over all clients
(``Limits.total_pending``); past either a job is refused at once with :class:`BusyError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from layerscope.server.limits import Limits

T = TypeVar("T")


class BusyError(Exception):
    """A client's own limit or the server's bound is reached; try again in a moment."""


class Cancelled(Exception):
    """Raised inside a job when its client has gone (or the server is shutting down)."""


#: request types never run inside another job's :meth:`ModelWorker.share`: a model switch changes
#: the model; a chat answer is long and shares the worker itself, which it cannot do when nested
NOT_SHARED = frozenset({"switch_model", "ask"})


class ShuttingDown(Exception):
    """The server is stopping: queued jobs are cancelled and new ones refused."""


@dataclass(eq=False)
class Batched:
    """A job that may share a batch: its request type's batching, its context and message."""

    batching: Any  # registry.Batching (not imported: the registry imports the worker's errors)
    ctx: Any
    msg: Any


@dataclass(eq=False)
class Job:
    fn: Callable[[], Any]
    fut: asyncio.Future
    loop: asyncio.AbstractEventLoop
    client: str
    interactive: bool = False
    cancelled: threading.Event | None = None  # set when the client has gone
    batched: Batched | None = None
    type: str = ""

    def gone(self) -> bool:
        return self.cancelled is not None and self.cancelled.is_set()


class ModelWorker:
    """Runs model jobs on one dedicated thread: per-client queues, round robin, interactive lane."""

    def __init__(
        self,
        limits: Limits | None = None,
        around: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        #: runs each model-lane job (``around(fn)`` calls ``fn``): the server installs its
        #: between-blocks checkpoints here
        self.around = around or (lambda fn: fn())
        self._queues: OrderedDict[str, deque[Job]] = OrderedDict()
        self._interactive: deque[Job] = deque()
        self._per_client: dict[str, int] = {}  # queued + running, by client
        self._queued = 0
        self._cond = threading.Condition()
        self._current: Job | None = None
        self._current_gone: threading.Event | None = None  # the running job's client has gone
        self._depth = 0  # >1 while an interactive job runs at a checkpoint
        self._sharing = False  # a long job is running others' jobs (share)
        self._closing = False
        self.completed = 0  # jobs finished (any outcome): the load test watches it move on
        self._thread = threading.Thread(target=self._loop, name="layerscope-model", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        """Whether a job is running now."""
        return self._current is not None

    @property
    def pending(self) -> int:
        """Jobs waiting (not yet started), over all clients."""
        return self._queued

    def client_load(self, client: str) -> int:
        """Jobs of ``client`` waiting or running."""
        return self._per_client.get(client, 0)

    # ------------------------------------------------------------------ submitting
    async def run(
        self,
        fn: Callable[[], T],
        *,
        client: str = "",
        interactive: bool = False,
        cancelled: threading.Event | None = None,
        batched: Batched | None = None,
        type_: str = "",
    ) -> T:
        """Run ``fn`` on the model thread and await its result.

        Raises :class:`BusyError` at once past ``client``'s limit or the global bound, and
        :class:`Cancelled` if ``cancelled`` is set before the job starts.
        """
        loop = asyncio.get_running_loop()
        job = Job(fn, loop.create_future(), loop, client, interactive, cancelled, batched, type_)
        with self._cond:
            self._admit(client)
            self._per_client[client] = self._per_client.get(client, 0) + 1
            self._queued += 1
            if interactive:
                self._interactive.append(job)
            else:
                self._queues.setdefault(client, deque()).append(job)
            self._cond.notify()
        return await job.fut

    def _admit(self, client: str) -> None:
        lim = self.limits
        if self._closing:
            raise BusyError("The server is shutting down.")
        if self._per_client.get(client, 0) >= lim.client_pending:
            raise BusyError(
                f"You have {lim.client_pending} requests waiting or running; wait for one to "
                "finish (limit: client_pending)."
            )
        if self._queued >= lim.total_pending:
            raise BusyError(
                f"The server has {lim.total_pending} requests waiting; try again in a moment "
                "(limit: total_pending)."
            )

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> None:
        """Called by a running job (between blocks, when it streams a frame): answers waiting
        interactive jobs, and raises :class:`Cancelled` if the running job's client has gone.
        A no-op on any other thread, and inside an interactive job."""
        if threading.current_thread() is not self._thread or self._depth != 1:
            return
        if self._current is None:  # an interactive job is the one running
            return
        gone = self._current_gone
        if gone is not None and gone.is_set():
            raise Cancelled()
        while True:
            with self._cond:
                if not self._interactive:
                    return
                job = self._interactive.popleft()
                self._queued -= 1
            self._depth += 1
            try:
                self._execute(job)
            finally:
                self._depth -= 1

    def share(self) -> None:
        """Called by a long job at a point where it holds no hooks on the model and no state
        another job could disturb (between the tokens of a chat answer): runs the next waiting
        job of every *other* client, then returns, so one long answer does not hold up everyone
        else's traces. Also a :meth:`checkpoint`. A no-op anywhere else."""
        self.checkpoint()
        outer, outer_gone = self._current, self._current_gone
        if outer is None or self._sharing or threading.current_thread() is not self._thread:
            return
        picks: list[Job] = []
        with self._cond:
            for client in list(self._queues):
                q = self._queues[client]
                if client == outer.client or not q or q[0].type in NOT_SHARED:
                    continue
                picks.append(q.popleft())
                self._queued -= 1
                self._queues.move_to_end(client)
                if not q:
                    del self._queues[client]
        self._sharing = True
        try:
            for job in picks:
                self._execute(job)
        finally:
            self._sharing = False
            self._current, self._current_gone = outer, outer_gone

    # ------------------------------------------------------------------ the thread
    def _next(self) -> list[Job] | None:
        """The next job (or batch) to run; blocks until there is one. None: stop."""
        with self._cond:
            while True:
                if self._interactive:
                    self._queued -= 1
                    return [self._interactive.popleft()]
                for client in list(self._queues):
                    q = self._queues[client]
                    if not q:
                        del self._queues[client]
                        continue
                    job = q.popleft()
                    self._queued -= 1
                    self._queues.move_to_end(client)  # round robin: this client goes last
                    if not q:
                        del self._queues[client]
                    return [job]
                if self._closing:
                    return None
                self._cond.wait()

    def _batch_for(self, first: Job) -> list[Job]:
        """``first`` plus the jobs at the heads of other clients' queues it can run with."""
        b = first.batched
        if b is None or first.gone():
            return [first]
        try:
            key = b.batching.key(b.ctx, b.msg)
        except Exception:  # the job's own run will report it
            return [first]
        if key is None:
            return [first]
        batch = [first]
        with self._cond:
            heads = [(c, q[0]) for c, q in self._queues.items() if q]
        for client, job in heads:
            if len(batch) >= b.batching.max_size:
                break
            o = job.batched
            if o is None or o.batching is not b.batching or job.gone() or client == first.client:
                continue
            try:
                if o.batching.key(o.ctx, o.msg) != key:
                    continue
            except Exception:
                continue
            with self._cond:  # still at the head? (a job never leaves a queue but here)
                q = self._queues.get(client)
                if not q or q[0] is not job:
                    continue
                q.popleft()
                self._queued -= 1
                if not q:
                    del self._queues[client]
            batch.append(job)
        return batch

    def _loop(self) -> None:
        while True:
            jobs = self._next()
            if jobs is None:
                return
            batch = self._batch_for(jobs[0])
            self._depth = 1
            try:
                if len(batch) == 1:
                    self._execute(batch[0])
                else:
                    self._execute_batch(batch)
            finally:
                self._depth = 0

    def _execute(self, job: Job) -> None:
        ok, value = True, None
        try:
            if job.gone():
                raise Cancelled()
            if job.interactive:
                value = job.fn()
            else:
                self._current, self._current_gone = job, job.cancelled
                value = self.around(job.fn)
        except BaseException as exc:  # handed to the awaiting coroutine
            ok, value = False, exc
        finally:
            if not job.interactive:
                self._current, self._current_gone = None, None
        self._finish(job, ok, value)

    def _execute_batch(self, batch: list[Job]) -> None:
        b = batch[0].batched
        assert b is not None
        ctxs = [j.batched.ctx for j in batch]  # type: ignore[union-attr]
        msgs = [j.batched.msg for j in batch]  # type: ignore[union-attr]
        answered: set[int] = set()

        def finish(i: int, result: Any) -> None:  # each job hears its answer when it is ready
            if i not in answered:
                answered.add(i)
                self._finish(batch[i], not isinstance(result, BaseException), result)

        self._current = batch[0]  # a batch is cancelled job by job (its handler checks each)
        error: BaseException = RuntimeError("the batch ended without answering this request")
        try:
            self.around(lambda: b.batching.run(ctxs, msgs, finish))
        except BaseException as exc:  # the batch failed: each job not yet answered hears it
            error = exc
        finally:
            self._current = None
        for i in range(len(batch)):
            finish(i, error)

    def _finish(self, job: Job, ok: bool, value: Any) -> None:
        with self._cond:  # free the slot before anyone hears the answer
            left = self._per_client.get(job.client, 1) - 1
            if left:
                self._per_client[job.client] = left
            else:
                self._per_client.pop(job.client, None)
            self.completed += 1
        with contextlib.suppress(RuntimeError):  # that event loop is gone (shutdown)
            job.loop.call_soon_threadsafe(_set_result if ok else _set_exception, job.fut, value)

    # ------------------------------------------------------------------ stopping
    def close(self, timeout: float | None = 30.0) -> bool:
        """Refuse new jobs, cancel the waiting ones, let the running job finish (up to
        ``timeout`` seconds), then stop the thread. True if it stopped in time."""
        with self._cond:
            self._closing = True
            waiting = [*self._interactive, *(j for q in self._queues.values() for j in q)]
            self._interactive.clear()
            self._queues.clear()
            self._queued = 0
            self._cond.notify_all()
        for job in waiting:
            self._finish(job, False, ShuttingDown("The server is shutting down."))
        if threading.current_thread() is self._thread:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
