"""The WebSocket protocol: one connection, many concurrent requests, frames tagged with ``req``."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from layerscope.errors import LayerscopeError
from layerscope.server import jobs
from layerscope.server import schemas as S
from layerscope.server.context import ServerContext
from layerscope.server.frames import VocabTracker, model_summary
from layerscope.server.store import UnknownIdError
from layerscope.server.worker import BusyError, Cancelled

log = logging.getLogger("layerscope.server")
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_MESSAGE_CHARS = 100_000


class Connection:
    """State of one WebSocket client: its session, token table and in-flight requests."""

    def __init__(self, ctx: ServerContext, ws: WebSocket, session: str) -> None:
        self.ctx = ctx
        self.ws = ws
        self.session = session
        self.vocab = VocabTracker(ctx.model)
        self.vocab_lock = threading.Lock()
        self.closed = threading.Event()
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    async def send(self, frame: BaseModel | str) -> int:
        """Send one frame; returns its size in bytes."""
        text = frame if isinstance(frame, str) else frame.model_dump_json()
        async with self._send_lock:
            await self.ws.send_text(text)
        return len(text.encode())

    async def error(self, req: int | None, code: str, message: str) -> None:
        if not self.closed.is_set():
            await self.send(S.ErrorFrame(req=req, code=code, message=message))  # type: ignore[arg-type]

    async def serve(self) -> None:
        await self.send(S.HelloFrame(session=self.session, model=model_summary(self.ctx.model)))
        try:
            while True:
                text = await self.ws.receive_text()
                self._dispatch(text)
        except WebSocketDisconnect:
            pass
        finally:
            self.closed.set()
            for t in self._tasks:
                t.cancel()

    def _dispatch(self, text: str) -> None:
        req: int | None = None
        try:
            if len(text) > MAX_MESSAGE_CHARS:
                raise ValueError(f"message longer than {MAX_MESSAGE_CHARS} characters")
            raw = json.loads(text)
            if isinstance(raw, dict) and isinstance(raw.get("req"), int):
                req = raw["req"]
            msg = S.client_frame.validate_python(raw)
        except (ValueError, ValidationError) as exc:
            self._spawn(self.error(req, "bad_request", _validation_message(exc)))
            return
        self._spawn(self._handle(msg))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, msg: Any) -> None:
        try:
            if isinstance(msg, S.TraceRequest | S.PatchedTraceRequest):
                await self._stream(msg)
            else:
                frame = await self.ctx.worker.run(lambda: jobs.answer(self, msg))
                await self.send(frame)
        except BusyError as exc:
            await self.error(msg.req, "busy", str(exc))
        except UnknownIdError as exc:
            await self.error(msg.req, "not_found", _not_found(exc))
        except LayerscopeError as exc:
            await self.error(msg.req, "bad_request", str(exc))
        except (Cancelled, WebSocketDisconnect, asyncio.CancelledError):
            pass
        except Exception as exc:  # the server stays up; the client hears what failed
            if self.closed.is_set():
                return
            log.exception("request %s failed", msg.type)
            await self.error(msg.req, "internal", f"internal error: {type(exc).__name__}: {exc}")

    async def _stream(self, msg: S.TraceRequest | S.PatchedTraceRequest) -> None:
        """Run a trace on the worker, forwarding its frames as the callbacks produce them."""
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue[str] = asyncio.Queue()
        t0 = time.perf_counter()

        def emit(frame: BaseModel) -> None:
            if self.closed.is_set():
                raise Cancelled()
            loop.call_soon_threadsafe(frames.put_nowait, frame.model_dump_json())

        job: Callable[[], Any] = lambda: jobs.stream_trace(self, msg, emit)  # noqa: E731
        fut = asyncio.ensure_future(self.ctx.worker.run(job))
        sent = 0
        while True:
            getter = asyncio.ensure_future(frames.get())
            done, _ = await asyncio.wait({getter, fut}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                sent += await self.send(getter.result())
                continue
            getter.cancel()
            break
        while not frames.empty():
            sent += await self.send(frames.get_nowait())
        trace = fut.result()
        trace_id = self.ctx.store.put(self.session, trace)
        timings = {k: round(float(v), 4) for k, v in trace.timings.items()}
        timings["server"] = round(time.perf_counter() - t0, 4)
        await self.send(
            S.DoneFrame(
                req=msg.req,
                trace_id=trace_id,
                tokens=[int(i) for i in trace.ids],
                n_prompt=int(trace.n_prompt),
                lock_in=[int(x) for x in trace.lock_in()],
                timings=timings,
                bytes_sent=sent,
                trace_bytes=int(trace.nbytes()),
            )
        )


def _validation_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            where = ".".join(str(p) for p in err["loc"])
            parts.append(f"{where}: {err['msg']}" if where else err["msg"])
        return "invalid request: " + "; ".join(parts)
    return f"invalid request: {exc}"


def _not_found(exc: UnknownIdError) -> str:
    key = exc.args[0] if exc.args else "?"
    return f"unknown or expired id {key!r}; run the trace again"


def new_session(requested: str | None) -> str:
    """The client's session id if well-formed, else a fresh one."""
    if requested and _SESSION_RE.match(requested):
        return requested
    return secrets.token_urlsafe(12)
