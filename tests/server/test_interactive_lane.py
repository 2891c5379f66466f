"""Quick requests do not wait behind a long one: the interactive lane runs between the blocks of
another client's forward passes, with the same answer as when the worker is idle; and under many
concurrent clients every frame reaches the client that asked."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Literal

import torch
from pydantic import Field

from layerscope.server.handlers import REGISTRY
from layerscope.server.schemas import Frame, Request
from server.server_helpers import Serving


class PassesRequest(Request):
    """Test-only: run ``n`` forward passes of the served model (a long job, e.g. a sweep)."""

    type: Literal["passes"] = "passes"
    n: int = Field(200, le=5000)


class PassesFrame(Frame):
    type: Literal["passes"] = "passes"
    req: int
    finished_at: float


def passes(ctx, msg: PassesRequest) -> PassesFrame:
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    for _ in range(msg.n):
        ctx.model.forward(ids)
    return PassesFrame(req=msg.req, finished_at=time.monotonic())


async def connect_hello(address):
    from websockets.asyncio.client import connect

    ws = await connect(f"ws://{address}/ws")
    assert json.loads(await ws.recv())["type"] == "hello"
    return ws


async def until_answer(ws, req, timeout=30):
    while True:
        f = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if f.get("req") == req and f["type"] not in ("start", "token", "layer"):
            return f


def test_a_cell_request_is_answered_between_the_blocks_of_another_clients_long_job(tiny):
    from layerscope.server import create_app

    registry = REGISTRY.copy()
    registry.request(PassesRequest, answers=PassesFrame)(passes)
    app = create_app(tiny, registry=registry)

    async def main(address):
        reader, busy = await connect_hello(address), await connect_hello(address)
        await reader.send(json.dumps({"type": "trace", "req": 1, "prompt": "Hello world"}))
        trace_id = (await until_answer(reader, 1))["trace_id"]
        cell = {"type": "cell", "req": 2, "trace_id": trace_id, "layer": 1, "position": 1}
        await reader.send(json.dumps(cell))
        idle_answer = await until_answer(reader, 2)  # the worker is idle

        await busy.send(json.dumps({"type": "passes", "req": 1, "n": 40}))
        worker = app.state.ctx.worker
        while not worker.busy:
            await asyncio.sleep(0.005)
        await reader.send(json.dumps({**cell, "req": 3}))
        during = await until_answer(reader, 3)
        answered_at = time.monotonic()
        long_done = await until_answer(busy, 1, timeout=120)
        return idle_answer, during, answered_at, long_done

    with Serving(app) as live:
        idle_answer, during, answered_at, long_done = asyncio.run(main(live.address))
    assert long_done["type"] == "passes"
    assert answered_at < long_done["finished_at"]  # it did not wait for the long job
    same = {**during, "req": 2, "vocab": idle_answer["vocab"]}  # token texts: sent only once
    assert same == idle_answer  # the same answer as when the worker was idle


def test_many_clients_each_get_only_their_own_frames(tiny):
    from layerscope.server import create_app

    app = create_app(tiny)
    prompts = [f"client {i} says hello {'again ' * i}" for i in range(8)]

    async def session(address, prompt):
        ws = await connect_hello(address)
        expected = tiny.tokenizer.encode(prompt)
        frames = []
        for req in (1, 2, 3):  # the same req numbers on every connection
            await ws.send(json.dumps({"type": "trace", "req": req, "prompt": prompt}))
        for req in (1, 2, 3):
            while True:
                f = json.loads(await asyncio.wait_for(ws.recv(), 60))
                frames.append(f)
                if f["type"] == "done" and f["req"] == req:
                    break
        done = [f for f in frames if f["type"] == "done"]
        cells = []
        for i, d in enumerate(done):
            await ws.send(
                json.dumps(
                    {
                        "type": "cell",
                        "req": 10 + i,
                        "trace_id": d["trace_id"],
                        "layer": 0,
                        "position": len(expected) - 1,
                    }
                )
            )
            cells.append(await until_answer(ws, 10 + i))
        await ws.close()
        return expected, frames, cells

    async def main(address):
        return await asyncio.gather(*(session(address, p) for p in prompts))

    with Serving(app) as live:
        results = asyncio.run(main(live.address))
    trace_ids = set()
    for expected, frames, cells in results:
        assert all(f["type"] != "error" for f in frames), frames
        starts = [f for f in frames if f["type"] == "start"]
        assert [s["tokens"] for s in starts] == [expected] * 3  # its own prompt, every time
        done = [f for f in frames if f["type"] == "done"]
        assert all(d["tokens"] == expected for d in done)
        assert all(c["type"] == "cell" for c in cells)
        trace_ids |= {d["trace_id"] for d in done}
    assert len(trace_ids) == 3 * len(prompts)
