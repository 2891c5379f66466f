"""Faults: a failing handler, out of memory, a silent client, a client that stops reading, a
half-closed socket, a client that leaves mid-request, and shutdown. After each, the server keeps
serving everyone else."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Literal

import pytest
import torch
from pydantic import Field

from layerscope.server.handlers import REGISTRY
from layerscope.server.limits import Limits
from layerscope.server.schemas import Frame, Request
from server.server_helpers import Serving, raw_websocket, ws_frame


class SpinRequest(Request):
    """Test-only: keep the worker busy for up to ``seconds``, checkpointing as a forward does."""

    type: Literal["spin"] = "spin"
    seconds: float = Field(5.0, le=30)
    fail: Literal["none", "error", "oom"] = "none"


class SpinFrame(Frame):
    type: Literal["spin"] = "spin"
    req: int
    steps: int


SPINS: list[dict] = []  # each spin's outcome, for the tests to read


def spin(ctx, msg: SpinRequest) -> SpinFrame:
    if msg.fail == "error":
        raise RuntimeError("the handler broke")
    if msg.fail == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    record = {"steps": 0, "cancelled": False}
    SPINS.append(record)
    deadline = time.monotonic() + msg.seconds
    try:
        while time.monotonic() < deadline:
            ctx.server.worker.checkpoint()  # as between the blocks of a forward pass
            record["steps"] += 1
            time.sleep(0.002)
    except BaseException:
        record["cancelled"] = True
        raise
    return SpinFrame(req=msg.req, steps=record["steps"])


class FloodRequest(Request):
    """Test-only: stream ``frames`` frames of 64 KiB each, as fast as the worker can."""

    type: Literal["flood"] = "flood"
    frames: int = Field(400, le=1000)


class ChunkFrame(Frame):
    type: Literal["chunk"] = "chunk"
    req: int
    data: str


class FloodFrame(Frame):
    type: Literal["flood"] = "flood"
    req: int


FLOODS: list[dict] = []


def flood(ctx, msg: FloodRequest) -> FloodFrame:
    record = {"emitted": 0, "cancelled": False}
    FLOODS.append(record)
    try:
        for _ in range(msg.frames):
            ctx.emit(ChunkFrame(req=msg.req, data="x" * (64 << 10)))
            record["emitted"] += 1
    except BaseException:
        record["cancelled"] = True
        raise
    return FloodFrame(req=msg.req)


def app_with_spin(tiny, **limits):
    from layerscope.server import create_app

    registry = REGISTRY.copy()
    registry.request(SpinRequest, answers=SpinFrame)(spin)
    registry.request(FloodRequest, answers=FloodFrame, streams=(ChunkFrame,))(flood)
    return create_app(tiny, registry=registry, limits=Limits(**limits))


async def hello(address: str, **kwargs):
    from websockets.asyncio.client import connect

    ws = await connect(f"ws://{address}/ws", **kwargs)
    assert json.loads(await ws.recv())["type"] == "hello"
    return ws


async def answer(ws, req: int, timeout: float = 20) -> dict:
    """The frame that ends request ``req``."""
    while True:
        f = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if f.get("req") == req and f["type"] in ("done", "error", "spin", "cell"):
            return f


async def trace_ok(address: str) -> None:
    """Another client is served normally."""
    ws = await hello(address)
    await ws.send(json.dumps({"type": "trace", "req": 1, "prompt": "Hello world"}))
    assert (await answer(ws, 1))["type"] == "done"
    await ws.close()


def connections(app) -> int:
    return len(app.state.ctx.listeners)


async def until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.fixture
def spin_app(tiny):
    SPINS.clear()
    FLOODS.clear()
    return app_with_spin(tiny, idle_seconds=1.0, send_buffer_bytes=1 << 20)


def test_a_handler_exception_is_an_internal_error_with_a_request_id(spin_app, caplog):
    async def main(address):
        ws = await hello(address)
        await ws.send(json.dumps({"type": "spin", "req": 4, "fail": "error"}))
        f = await answer(ws, 4)
        assert (f["type"], f["code"]) == ("error", "internal")
        assert "the handler broke" in f["message"] and "request id c" in f["message"]
        await ws.send(json.dumps({"type": "spin", "req": 5, "seconds": 0.01}))
        assert (await answer(ws, 5))["type"] == "spin"  # the same connection still works
        await trace_ok(address)

    with Serving(spin_app) as live:
        asyncio.run(main(live.address))
    assert any("failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_out_of_memory_is_a_clear_unavailable_answer(spin_app):
    async def main(address):
        ws = await hello(address)
        await ws.send(json.dumps({"type": "spin", "req": 1, "fail": "oom"}))
        f = await answer(ws, 1)
        assert (f["type"], f["code"]) == ("error", "unavailable")
        assert "out of memory" in f["message"] and "shorter prompt" in f["message"]
        await trace_ok(address)

    with Serving(spin_app) as live:
        asyncio.run(main(live.address))


def test_a_client_that_leaves_mid_request_frees_the_worker(spin_app):
    async def main(address):
        ws = await hello(address)
        await ws.send(json.dumps({"type": "spin", "req": 1, "seconds": 20}))
        await until(lambda: SPINS and SPINS[0]["steps"] > 10)
        left = time.monotonic()
        await ws.close()
        await until(lambda: SPINS[0]["cancelled"], timeout=5)
        freed = time.monotonic() - left
        assert freed < 5  # not the 20 s the request asked for
        await trace_ok(address)  # the worker moved on
        await until(lambda: connections(spin_app) == 0)

    with Serving(spin_app) as live:
        asyncio.run(main(live.address))


def test_a_silent_client_is_closed_after_the_idle_limit_and_others_are_served(spin_app):
    async def main(address):
        silent = await hello(address)
        raw = socket.create_connection(("127.0.0.1", int(address.split(":")[1])))  # says nothing
        await trace_ok(address)
        with pytest.raises(Exception) as closed:  # ConnectionClosed once the server closes it
            await asyncio.wait_for(silent.recv(), 5)
        assert getattr(closed.value, "rcvd", None) is not None
        assert closed.value.rcvd.code == 1001
        raw.close()
        await until(lambda: connections(spin_app) == 0)

    with Serving(spin_app) as live:
        asyncio.run(main(live.address))


def test_a_client_that_stops_reading_is_disconnected_and_memory_stays_bounded(spin_app, caplog):
    limit = spin_app.state.ctx.limits.send_buffer_bytes

    async def main(address):
        # a client that never reads: the kernel's buffers fill, then the server's send buffer
        port = int(address.split(":")[1])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        slow = await hello(address, max_queue=1, sock=sock)
        await slow.send(json.dumps({"type": "flood", "req": 1, "frames": 1000}))
        await until(lambda: FLOODS and FLOODS[0]["cancelled"], timeout=30)
        await until(lambda: connections(spin_app) == 0)
        await trace_ok(address)
        slow.transport.abort()

    with Serving(spin_app) as live:
        asyncio.run(main(live.address))
    # it stopped long before streaming all 1000 frames (64 MB): about kernel buffers + the limit
    assert FLOODS[0]["emitted"] < 1000
    assert any("not reading" in r.getMessage() for r in caplog.records)
    print(f"stalled reader: {FLOODS[0]['emitted']} frames of 64 KiB before the cut, limit {limit}")


def test_a_half_closed_socket_cancels_its_work_and_frees_the_connection(spin_app):
    def half_close(port: int) -> None:
        s = raw_websocket(port)
        s.sendall(ws_frame(json.dumps({"type": "spin", "req": 1, "seconds": 20}).encode()))
        deadline = time.monotonic() + 10
        while not (SPINS and SPINS[0]["steps"] > 10):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        s.shutdown(socket.SHUT_WR)  # no more from this client; it never reads either
        threading.Timer(10, s.close).start()

    async def main(address):
        half_close(int(address.split(":")[1]))
        await until(lambda: SPINS[0]["cancelled"], timeout=8)
        await trace_ok(address)
        await until(lambda: connections(spin_app) == 0)

    with Serving(spin_app) as live:
        asyncio.run(main(live.address))


def test_shutdown_cancels_waiting_work_and_stops_cleanly(spin_app):
    async def main(address, live):
        ws = await hello(address)
        await ws.send(json.dumps({"type": "spin", "req": 1, "seconds": 20}))
        await ws.send(json.dumps({"type": "spin", "req": 2, "seconds": 20}))
        await until(lambda: SPINS and SPINS[0]["steps"] > 10)
        stopped = await asyncio.to_thread(live.stop, 20)
        return stopped

    live = Serving(spin_app)
    with live:
        t0 = time.monotonic()
        assert asyncio.run(main(live.address, live))
        took = time.monotonic() - t0
    assert took < 15  # the 20 s job was cancelled, not waited for
    assert SPINS[0]["cancelled"] and len(SPINS) == 1  # the waiting one never started
    worker = spin_app.state.ctx.worker
    assert not worker.busy and worker.pending == 0
    assert not worker._thread.is_alive()
