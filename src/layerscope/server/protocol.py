"""The WebSocket protocol: one connection, many concurrent requests, frames tagged with ``req``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from layerscope.errors import LayerscopeError
from layerscope.server.context import RequestContext, ServerContext, VocabTracker
from layerscope.server.frames import hello_frame
from layerscope.server.registry import Registry
from layerscope.server.schemas import ErrorFrame
from layerscope.server.store import UnknownIdError
from layerscope.server.worker import BusyError, Cancelled

log = logging.getLogger("layerscope.server")
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_MESSAGE_CHARS = 100_000


class Connection:
    """State of one WebSocket client: its session, token table and in-flight requests.

    Every request runs the same way: its handler runs on the model worker with a
    :class:`RequestContext`; frames it emits are forwarded as they come, then its terminal frame.
    """

    def __init__(
        self, server: ServerContext, registry: Registry, ws: WebSocket, session: str
    ) -> None:
        self.server = server
        self.registry = registry
        self.ws = ws
        self.session = session
        self.vocab = VocabTracker(server)
        self.closed = threading.Event()
        self._send_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task] = set()

    async def send(self, frame: BaseModel | str) -> int:
        """Send one frame; returns its size in bytes."""
        text = frame if isinstance(frame, str) else frame.model_dump_json()
        async with self._send_lock:
            await self.ws.send_text(text)
        return len(text.encode())

    async def error(self, req: int | None, code: str, message: str) -> None:
        if not self.closed.is_set():
            await self.send(ErrorFrame(req=req, code=code, message=message))  # type: ignore[arg-type]

    async def serve(self) -> None:
        self.server.add_listener(self.notify)
        try:
            await self.send(hello_frame(self.server.model, self.registry, self.session))
            while True:
                text = await self.ws.receive_text()
                self._dispatch(text)
        except WebSocketDisconnect:
            pass
        finally:
            self.server.remove_listener(self.notify)
            self.closed.set()
            for t in self._tasks:
                t.cancel()

    def notify(self, text: str) -> None:
        """Send a frame every connection gets (a model switch); safe from any thread."""
        if not self.closed.is_set():
            with contextlib.suppress(RuntimeError):  # the event loop is gone (shutdown)
                self._loop.call_soon_threadsafe(lambda: self._spawn(self._send_quietly(text)))

    async def _send_quietly(self, text: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client has gone
            await self.send(text)

    def _dispatch(self, text: str) -> None:
        req: int | None = None
        try:
            if len(text) > MAX_MESSAGE_CHARS:
                raise ValueError(f"message longer than {MAX_MESSAGE_CHARS} characters")
            raw = json.loads(text)
            if isinstance(raw, dict) and isinstance(raw.get("req"), int):
                req = raw["req"]
            msg = self.registry.client_frame.validate_python(raw)
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
            await self._run(msg)
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

    async def _run(self, msg: Any) -> None:
        """Run the handler on the worker, forwarding emitted frames, then the terminal frame."""
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue[str] = asyncio.Queue()
        ctx = RequestContext(
            server=self.server,
            session=self.session,
            req=msg.req,
            vocabulary=self.vocab,
            send=lambda text: loop.call_soon_threadsafe(frames.put_nowait, text),
            closed=self.closed,
            listener=self.notify,
        )
        handler = self.registry[msg.type].handler
        job: Callable[[], Any] = lambda: handler(ctx, msg)  # noqa: E731
        fut = asyncio.ensure_future(self.server.worker.run(job))
        while True:
            getter = asyncio.ensure_future(frames.get())
            done, _ = await asyncio.wait({getter, fut}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await self.send(getter.result())
                continue
            getter.cancel()
            break
        while not frames.empty():
            await self.send(frames.get_nowait())
        await self.send(fut.result())


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
