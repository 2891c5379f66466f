"""The model worker's scheduling: per-client queues served round robin, bounds, the interactive
lane, checkpoints, cancellation, batching and shutdown."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from layerscope.server.limits import Limits
from layerscope.server.worker import Batched, BusyError, Cancelled, ModelWorker, ShuttingDown


def gated(gate: threading.Event, order: list, name: str):
    def run():
        gate.wait(5)
        order.append(name)
        return name

    return run


def record(order: list, name: str):
    def run():
        order.append(name)
        return name

    return run


async def started(worker: ModelWorker) -> None:
    for _ in range(200):
        if worker.busy:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the job did not start")


def test_clients_are_served_round_robin_not_first_come():
    async def main():
        worker = ModelWorker(Limits(client_pending=10))
        gate, order = threading.Event(), []
        first = asyncio.ensure_future(worker.run(gated(gate, order, "a0"), client="a"))
        await started(worker)
        # a burst of four from "a", then one each from "b" and "c"
        jobs = [
            asyncio.ensure_future(worker.run(record(order, f"a{i}"), client="a"))
            for i in (1, 2, 3, 4)
        ]
        await asyncio.sleep(0.01)
        jobs += [
            asyncio.ensure_future(worker.run(record(order, n), client=n[0])) for n in ("b1", "c1")
        ]
        await asyncio.sleep(0.01)
        assert worker.pending == 6
        gate.set()
        await asyncio.gather(first, *jobs)
        worker.close()
        return order

    order = asyncio.run(main())
    assert order[:4] == ["a0", "a1", "b1", "c1"]  # b and c do not wait behind a's burst
    assert order[4:] == ["a2", "a3", "a4"]  # a's own order is kept


def test_busy_only_past_a_clients_own_limit_or_the_global_bound():
    async def main():
        worker = ModelWorker(Limits(client_pending=2, total_pending=3))
        gate, order = threading.Event(), []
        running = asyncio.ensure_future(worker.run(gated(gate, order, "a0"), client="a"))
        await started(worker)
        a1 = asyncio.ensure_future(worker.run(record(order, "a1"), client="a"))
        await asyncio.sleep(0.01)
        with pytest.raises(BusyError, match="client_pending"):  # a: one running, one waiting
            await worker.run(record(order, "a2"), client="a")
        others = [asyncio.ensure_future(worker.run(record(order, n), client=n)) for n in ("b", "c")]
        await asyncio.sleep(0.01)
        assert worker.pending == 3
        with pytest.raises(BusyError, match="total_pending"):
            await worker.run(record(order, "d"), client="d")
        gate.set()
        await asyncio.gather(running, a1, *others)
        assert worker.client_load("a") == 0 and worker.pending == 0
        assert await worker.run(record(order, "a3"), client="a") == "a3"  # freed again
        worker.close()

    asyncio.run(main())


def test_interactive_jobs_run_at_the_running_jobs_checkpoints():
    async def main():
        worker = ModelWorker()
        order: list[str] = []
        release = threading.Event()

        def long_job():  # e.g. a trace: calls checkpoint between blocks
            order.append("long:start")
            for _ in range(500):
                worker.checkpoint()
                if release.is_set():
                    break
                threading.Event().wait(0.002)
            order.append("long:end")
            return "long"

        long = asyncio.ensure_future(worker.run(long_job, client="a"))
        await started(worker)
        queued = asyncio.ensure_future(worker.run(record(order, "normal"), client="b"))
        quick = await asyncio.wait_for(
            worker.run(record(order, "quick"), client="c", interactive=True), 2
        )
        assert quick == "quick" and not long.done()  # answered while the long job runs
        release.set()
        await asyncio.gather(long, queued)
        worker.close()
        return order

    order = asyncio.run(main())
    assert order == ["long:start", "quick", "long:end", "normal"]


def test_a_gone_clients_jobs_are_dropped_and_its_running_job_stops():
    async def main():
        worker = ModelWorker()
        gone = threading.Event()
        ran: list[str] = []
        steps = 0

        def long_job():
            nonlocal steps
            while True:
                steps += 1
                worker.checkpoint()  # raises Cancelled once the client has gone
                threading.Event().wait(0.002)

        running = asyncio.ensure_future(worker.run(long_job, client="a", cancelled=gone))
        await started(worker)
        waiting = asyncio.ensure_future(
            worker.run(record(ran, "never"), client="a", cancelled=gone)
        )
        other = asyncio.ensure_future(worker.run(record(ran, "b"), client="b"))
        await asyncio.sleep(0.02)
        done_before = worker.completed
        gone.set()
        with pytest.raises(Cancelled):
            await asyncio.wait_for(running, 2)
        with pytest.raises(Cancelled):
            await asyncio.wait_for(waiting, 2)
        assert await asyncio.wait_for(other, 2) == "b"  # the worker moved on
        assert worker.completed == done_before + 3
        worker.close()
        return ran

    assert asyncio.run(main()) == ["b"]


def test_checkpoint_is_a_no_op_off_the_worker_thread():
    ModelWorker().checkpoint()  # nothing running, wrong thread: returns


def test_a_failing_job_leaves_the_worker_healthy():
    async def main():
        worker = ModelWorker()

        def boom():
            raise ValueError("bad")

        with pytest.raises(ValueError):
            await worker.run(boom, client="a")
        assert await worker.run(lambda: 7, client="a") == 7
        assert worker.client_load("a") == 0
        worker.close()

    asyncio.run(main())


@dataclass
class Msg:
    n: int
    key: object


def test_waiting_jobs_with_equal_keys_run_as_one_batch():
    from layerscope.server.registry import Batching

    batches: list[list[int]] = []

    def run_batch(ctxs, msgs, finish):
        batches.append([m.n for m in msgs])
        for i, m in enumerate(msgs):
            if m.n != 2:  # 2 is left unanswered: it hears an error
                finish(i, m.n * 10 if m.n != 3 else ValueError("three"))

    batching = Batching(key=lambda ctx, msg: msg.key, run=run_batch, max_size=3)

    async def main():
        worker = ModelWorker()
        gate = threading.Event()
        first = asyncio.ensure_future(worker.run(gated(gate, [], "x"), client="z"))
        await started(worker)

        def submit(n, key, client):
            b = Batched(batching, None, Msg(n, key))
            return asyncio.ensure_future(worker.run(lambda: -1, client=client, batched=b))

        jobs = [
            submit(1, "k", "a"),
            submit(2, "k", "b"),
            submit(3, "k", "c"),
            submit(4, "other", "d"),
            submit(5, "k", "e"),  # past max_size: the next batch
            submit(6, None, "f"),  # None: runs alone, through its own function
        ]
        await asyncio.sleep(0.02)
        gate.set()
        await first
        out = await asyncio.gather(*jobs, return_exceptions=True)
        worker.close()
        return out

    out = asyncio.run(main())
    assert batches == [[1, 2, 3]]  # a job with no partner runs alone, through its own function
    assert out[0] == 10 and isinstance(out[2], ValueError)  # one failure, the others fine
    assert isinstance(out[1], RuntimeError) and "without answering" in str(out[1])
    assert out[3:] == [-1, -1, -1]


def test_close_cancels_waiting_jobs_finishes_the_running_one_and_refuses_new_ones():
    async def main():
        worker = ModelWorker()
        gate, order = threading.Event(), []
        running = asyncio.ensure_future(worker.run(gated(gate, order, "run"), client="a"))
        await started(worker)
        waiting = asyncio.ensure_future(worker.run(record(order, "wait"), client="b"))
        await asyncio.sleep(0.01)
        threading.Timer(0.05, gate.set).start()
        stopped = await asyncio.to_thread(worker.close, 5)
        assert stopped
        assert await running == "run"
        with pytest.raises(ShuttingDown):
            await waiting
        with pytest.raises(BusyError, match="shutting down"):
            await worker.run(record(order, "late"), client="c")
        return order

    assert asyncio.run(main()) == ["run"]


def test_a_long_job_shares_the_worker_with_other_clients_between_its_steps():
    async def main():
        worker = ModelWorker()
        order: list[str] = []
        others_waiting = threading.Event()

        def chat_answer():  # e.g. the chat writing token by token
            others_waiting.wait(5)
            for i in range(3):
                order.append(f"token{i}")
                worker.share()
            return "answer"

        long = asyncio.ensure_future(worker.run(chat_answer, client="a"))
        await started(worker)
        jobs = [
            asyncio.ensure_future(worker.run(record(order, "a-next"), client="a")),
            asyncio.ensure_future(worker.run(record(order, "b1"), client="b")),
            asyncio.ensure_future(worker.run(record(order, "b2"), client="b")),
            asyncio.ensure_future(worker.run(record(order, "c1"), client="c")),
            asyncio.ensure_future(
                worker.run(record(order, "switch"), client="d", type_="switch_model")
            ),
            asyncio.ensure_future(worker.run(record(order, "ask2"), client="e", type_="ask")),
        ]
        await asyncio.sleep(0.02)
        others_waiting.set()
        assert await long == "answer"
        await asyncio.gather(*jobs)
        worker.close()
        return order

    order = asyncio.run(main())
    # b and c run between the answer's tokens, one job each per step; the asker's own next job,
    # a model switch and another chat answer wait for the answer to finish
    assert order[:6] == ["token0", "b1", "c1", "token1", "b2", "token2"]
    assert sorted(order[6:]) == ["a-next", "ask2", "switch"]
