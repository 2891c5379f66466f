"""The WebSocket protocol: one connection, many concurrent requests, frames tagged with ``req``.

A connection reads client frames, admits each request (rate limit, then the worker's per-client
and global bounds: past them the client hears ``busy`` at once) and runs it in its request type's
lane (``server/registry.py``). Frames go out through a send buffer bounded in bytes: a client that
stops reading is disconnected (1008) and its work cancelled instead of growing server memory.
When a client goes, its waiting jobs are dropped and its running job stops at its next
checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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

from layerscope.engine.checkpoints import is_out_of_memory, release_memory
from layerscope.errors import LayerscopeError
from layerscope.server.context import RequestContext, ServerContext, VocabTracker
from layerscope.server.frames import hello_frame
from layerscope.server.logs import log_request
from layerscope.server.registry import Registry, RequestType
from layerscope.server.schemas import ErrorFrame
from layerscope.server.store import UnknownIdError
from layerscope.server.worker import Batched, BusyError, Cancelled, ShuttingDown

log = logging.getLogger("layerscope.server")
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_connection_ids = itertools.count(1)

#: close codes (RFC 6455): policy violation (too slow), going away (idle)
CLOSE_TOO_SLOW = 1008
CLOSE_IDLE = 1001


class TokenBucket:
    """``rate`` requests per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Connection:
    """State of one WebSocket client: its session, token table, requests and send buffer.

    Every request runs the same way: its handler runs in its lane with a :class:`RequestContext`;
    frames it emits are queued for sending as they come, then its terminal frame.
    """

    def __init__(
        self, server: ServerContext, registry: Registry, ws: WebSocket, session: str
    ) -> None:
        self.server = server
        self.registry = registry
        self.ws = ws
        self.session = session
        self.cid = f"c{next(_connection_ids)}"  # this connection in logs and request ids
        self.limits = server.limits
        self.vocab = VocabTracker(server)
        self.closed = threading.Event()  # the client has gone: its jobs stop
        self.stats = server.metrics.session_opened()
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task] = set()
        self._bucket = TokenBucket(self.limits.client_rate, self.limits.client_burst)
        self._out: asyncio.Queue[tuple[str, int]] = asyncio.Queue()  # (frame, its bytes)
        self._out_bytes = 0
        self._stop = asyncio.Event()
        self._closer: asyncio.Task | None = None  # closing the socket with a code

    # ------------------------------------------------------------------ sending
    async def send(self, frame: BaseModel | str) -> int:
        """Queue one frame for sending; returns its size in bytes."""
        text = frame if isinstance(frame, str) else frame.model_dump_json()
        return self._enqueue(text)

    def _enqueue(self, text: str) -> int:
        size = len(text.encode())
        if self.closed.is_set():
            return size
        self._out_bytes += size
        if self._out_bytes > self.limits.send_buffer_bytes:
            log.warning(
                "%s: client is not reading (%d bytes waiting); disconnecting it",
                self.cid,
                self._out_bytes,
            )
            self._close(CLOSE_TOO_SLOW, "too slow: the client stopped reading")
            return size
        self._out.put_nowait((text, size))
        return size

    async def _sender(self) -> None:
        try:
            while True:
                text, size = await self._out.get()
                await self.ws.send_text(text)
                self._out_bytes -= size
        except (WebSocketDisconnect, RuntimeError, OSError):  # the client has gone
            self._close(None, "")

    # ------------------------------------------------------------------ the connection
    async def serve(self) -> None:
        self.server.add_listener(self.notify)
        sender = asyncio.create_task(self._sender())
        try:
            await self.send(hello_frame(self.server.model, self.registry, self.session))
            await self._receive_loop()
        finally:
            self.server.remove_listener(self.notify)
            self.closed.set()
            for t in list(self._tasks):
                t.cancel()
            if self._closer is not None:  # the close frame goes out after what was queued
                await self._closer
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            self.server.metrics.session_closed(self.stats)

    async def _receive_loop(self) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while not self.closed.is_set():
                recv = asyncio.ensure_future(self.ws.receive())
                idle = self.limits.idle_seconds if not self._tasks else None
                done, _ = await asyncio.wait(
                    {recv, stop}, timeout=idle, return_when=asyncio.FIRST_COMPLETED
                )
                if recv not in done:
                    recv.cancel()
                    if stop not in done:  # idle
                        log.info("%s: closing after %.0f s without a request", self.cid, idle)
                        self._close(CLOSE_IDLE, "closed after a long time without a request")
                    return
                message = recv.result()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    self._dispatch(message["text"])
                else:
                    self._refuse(
                        None,
                        "invalid request: binary frames are not part of the "
                        "protocol; send JSON text frames",
                    )
        finally:
            stop.cancel()

    def _close(self, code: int | None, reason: str) -> None:
        """Stop this connection: its work is cancelled; ``code``: close the socket with it."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._stop.set()
        if code is not None:
            self._closer = asyncio.ensure_future(self._close_socket(code, reason))

    async def _close_socket(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # a stalled client may never take the close frame
            await asyncio.wait_for(self.ws.close(code=code, reason=reason), timeout=5)

    def notify(self, text: str) -> None:
        """Send a frame every connection gets (a model switch); safe from any thread."""
        if not self.closed.is_set():
            with contextlib.suppress(RuntimeError):  # the event loop is gone (shutdown)
                self._loop.call_soon_threadsafe(self._enqueue, text)

    # ------------------------------------------------------------------ requests
    def _dispatch(self, text: str) -> None:
        req: int | None = None
        started = time.perf_counter()
        try:
            if len(text) > self.limits.max_message_bytes or (
                len(text.encode(errors="replace")) > self.limits.max_message_bytes
            ):
                raise ValueError(
                    f"message longer than {self.limits.max_message_bytes} bytes "
                    "(limit: max_message_bytes)"
                )
            raw = json.loads(text)
            if isinstance(raw, dict) and isinstance(raw.get("req"), int):
                req = raw["req"]
            msg = self.registry.client_frame.validate_python(raw)
        except (ValueError, ValidationError, RecursionError) as exc:
            self._refuse(req, _validation_message(exc), started=started)
            return
        if not self._bucket.take():
            self._answer_error(
                msg.type,
                msg.req,
                started,
                "busy",
                f"too many requests: at most {self.limits.client_rate:g} per second "
                f"(bursts of {self.limits.client_burst}); slow down (limit: client_rate)",
            )
            return
        self._spawn(self._handle(msg, started))

    def _refuse(self, req: int | None, message: str, started: float | None = None) -> None:
        self._answer_error("invalid", req, started or time.perf_counter(), "bad_request", message)

    def _answer_error(
        self, type_: str, req: int | None, started: float, code: str, message: str
    ) -> None:
        self._finished(type_, req, started, code)
        frame = ErrorFrame(req=req, code=code, message=message)  # type: ignore[arg-type]
        self._enqueue(frame.model_dump_json())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finished(self, type_: str, req: int | None, started: float, outcome: str) -> None:
        seconds = time.perf_counter() - started
        self.server.metrics.request_finished(type_, seconds, outcome)
        log_request(f"{self.cid}.{req}", self.session, type_, outcome, seconds)

    async def _handle(self, msg: Any, started: float) -> None:
        rid = f"{self.cid}.{msg.req}"
        outcome, frame = "ok", None
        try:
            frame = await self._run(msg, rid)
        except BusyError as exc:
            outcome, frame = "busy", self._error_frame(msg, "busy", str(exc))
        except ShuttingDown as exc:
            outcome, frame = "unavailable", self._error_frame(msg, "unavailable", str(exc))
        except UnknownIdError as exc:
            outcome, frame = "not_found", self._error_frame(msg, "not_found", _not_found(exc))
        except LayerscopeError as exc:
            outcome, frame = "bad_request", self._error_frame(msg, "bad_request", str(exc))
        except (Cancelled, WebSocketDisconnect, asyncio.CancelledError):
            outcome = "cancelled"
        except Exception as exc:  # the server stays up; the client hears what failed
            if is_out_of_memory(exc):
                release_memory()
                log.warning("%s: out of memory in %s", rid, msg.type, extra={"request_id": rid})
                outcome = "unavailable"
                frame = self._error_frame(
                    msg,
                    "unavailable",
                    "out of memory: this request needs more memory than the server has free; "
                    "try a shorter prompt or fewer tokens",
                )
            else:
                log.exception("request %s (%s) failed", rid, msg.type, extra={"request_id": rid})
                outcome = "internal"
                frame = self._error_frame(
                    msg,
                    "internal",
                    f"internal error: {type(exc).__name__}: {exc} (request id {rid})",
                )
        self._finished(msg.type, msg.req, started, outcome)
        if frame is not None:
            await self.send(frame)

    @staticmethod
    def _error_frame(msg: Any, code: str, message: str) -> ErrorFrame:
        return ErrorFrame(req=msg.req, code=code, message=message)  # type: ignore[arg-type]

    async def _run(self, msg: Any, rid: str) -> BaseModel:
        """Run the handler in its lane; emitted frames are queued as they come. Its terminal
        frame."""
        loop = asyncio.get_running_loop()
        rt: RequestType = self.registry[msg.type]

        def send(text: str) -> None:  # from the worker thread
            with contextlib.suppress(RuntimeError):  # the event loop is gone (shutdown)
                loop.call_soon_threadsafe(self._enqueue, text)

        ctx = RequestContext(
            server=self.server,
            session=self.session,
            req=msg.req,
            vocabulary=self.vocab,
            send=send,
            closed=self.closed,
            listener=self.notify,
            stats=self.stats,
            request_id=rid,
        )
        lane = rt.lane_of(msg)
        if lane == "inline":
            return rt.handler(ctx, msg)
        job: Callable[[], Any] = lambda: rt.handler(ctx, msg)  # noqa: E731
        batched = Batched(rt.batching, ctx, msg) if rt.batching is not None else None
        return await self.server.worker.run(
            job,
            client=self.cid,
            interactive=lane == "interactive",
            cancelled=self.closed,
            batched=batched,
            type_=msg.type,
        )


def _validation_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            where = ".".join(str(p) for p in err["loc"])
            parts.append(f"{where}: {err['msg']}" if where else err["msg"])
        return "invalid request: " + "; ".join(parts)
    if isinstance(exc, RecursionError):
        return "invalid request: nested too deeply"
    return f"invalid request: {exc}"


def _not_found(exc: UnknownIdError) -> str:
    key = exc.args[0] if exc.args else "?"
    return f"unknown or expired id {key!r}; run the trace again"


def new_session(requested: str | None) -> str:
    """The client's session id if well-formed, else a fresh one."""
    if requested and _SESSION_RE.match(requested):
        return requested
    return secrets.token_urlsafe(12)
