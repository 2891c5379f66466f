"""The trace store's bounds and the worker's queue bound."""

from __future__ import annotations

import asyncio
import threading

import pytest

from layerscope.server.store import ResultStore, UnknownIdError
from layerscope.server.worker import BusyError, ModelWorker


class Blob:
    def __init__(self, n: int) -> None:
        self.n = n

    def nbytes(self) -> int:
        return self.n


def test_lru_evicts_by_bytes_within_a_session():
    store = ResultStore(session_bytes=100, max_sessions=4)
    a = store.put("s", Blob(40))
    b = store.put("s", Blob(40))
    store.get(a)  # a is now the most recently used
    c = store.put("s", Blob(40))
    assert store.get(a) and store.get(c)
    with pytest.raises(UnknownIdError):
        store.get(b)
    assert store.nbytes == 80
    big = store.put("s", Blob(500))  # larger than the budget: kept alone
    assert store.session_ids("s") == [big]


def test_sessions_are_bounded_and_separate():
    store = ResultStore(session_bytes=1000, max_sessions=2)
    first = store.put("one", Blob(10))
    store.put("two", Blob(10))
    store.put("three", Blob(10))
    with pytest.raises(UnknownIdError):
        store.get(first)
    assert len(store) == 2


def test_worker_runs_jobs_in_order_and_says_busy_past_its_bound():
    async def main():
        worker = ModelWorker(max_pending=1)
        gate = threading.Event()
        order: list[int] = []

        def job(i: int):
            def run():
                if i == 0:
                    gate.wait(5)
                order.append(i)
                return i

            return run

        first = asyncio.ensure_future(worker.run(job(0)))
        await asyncio.sleep(0.05)
        assert worker.busy
        second = asyncio.ensure_future(worker.run(job(1)))
        await asyncio.sleep(0.05)
        assert worker.pending == 1
        with pytest.raises(BusyError, match="busy"):
            await worker.run(job(2))
        gate.set()
        assert await first == 0 and await second == 1
        assert order == [0, 1]

        def boom():
            raise ValueError("bad")

        with pytest.raises(ValueError):
            await worker.run(boom)
        assert await worker.run(lambda: 7) == 7  # still healthy
        worker.close()

    asyncio.run(main())
