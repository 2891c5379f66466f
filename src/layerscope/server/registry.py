"""The request registry: one declaration per request type, everything else derived from it.

A request type is its request schema, the frames that answer it, which of them end it, whether
it streams, and its handler. Handlers live one feature per file in ``server/handlers/`` and
register themselves with :func:`request`; the client and server frame unions, the hello frame's
``requests``, ``/api/protocol`` and the README's protocol tables all come from the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

from layerscope.server.context import RequestContext
from layerscope.server.schemas import ErrorFrame, HelloFrame, RequestInfo

Handler = Callable[[RequestContext, Any], BaseModel]

Lane = Literal["model", "interactive", "inline"]
"""Where a request runs.

- ``model``: queued per connection on the model worker; connections are served round robin.
- ``interactive``: on the model worker ahead of the queue, and also *between the blocks* of a
  running job's forward pass, so it never waits behind a whole trace. Such a handler only reads
  stored results and the model's weights: it never runs the model's modules.
- ``inline``: on the event loop, no worker (e.g. usage reports); it must be quick and never touch
  the model.
"""


Finish = Callable[[int, "BaseModel | BaseException"], None]
"""Answers job i of a batch: its terminal frame, or the exception that ended it."""


@dataclass(frozen=True)
class Batching:
    """How jobs of one request type that wait together may run as one batch on the worker.

    ``key`` (on the worker thread) gives jobs that may share a batch equal keys, or ``None`` for a
    job that must run alone; ``run(ctxs, msgs, finish)`` answers each job through ``finish(i,
    frame_or_exception)`` as soon as that job is done, exactly as a one-at-a-time run would (a
    job it leaves unanswered gets an error).
    """

    key: Callable[[RequestContext, Any], Any]
    run: Callable[[list[RequestContext], list[Any], Finish], None]
    max_size: int = 8


def frame_type(cls: type[BaseModel]) -> str:
    """The ``type`` literal of a request or frame class."""
    return cls.model_fields["type"].default


@dataclass(frozen=True)
class RequestType:
    """One request type: what a client sends, what comes back, and who answers."""

    schema: type[BaseModel]
    frames: tuple[type[BaseModel], ...]  # every frame that may answer it, terminal ones last
    terminal: tuple[type[BaseModel], ...]
    handler: Handler  # returns the terminal frame; streamed frames go through ctx.emit
    lane: Lane | Callable[[Any], Lane] = "model"  # or chosen per message
    batching: Batching | None = None

    def lane_of(self, msg: Any) -> Lane:
        """The lane ``msg`` runs in."""
        return self.lane(msg) if callable(self.lane) else self.lane

    @property
    def type(self) -> str:
        return frame_type(self.schema)

    @property
    def streams(self) -> bool:
        return len(self.frames) > len(self.terminal)

    def info(self) -> RequestInfo:
        return RequestInfo(
            streams=self.streams,
            frames=[frame_type(f) for f in self.frames],
            terminal=[frame_type(f) for f in self.terminal],
        )


class Registry:
    """Request types by their ``type``."""

    def __init__(self, types: Iterable[RequestType] = ()) -> None:
        self._types: dict[str, RequestType] = {}
        for t in types:
            self.add(t)

    def add(self, rt: RequestType) -> None:
        if rt.type in self._types:
            raise ValueError(f"request type {rt.type!r} is registered twice")
        if not set(rt.terminal) <= set(rt.frames):
            raise ValueError(f"{rt.type}: terminal frames must be among its frames")
        self._types[rt.type] = rt
        self.__dict__.pop("client_frame", None)
        self.__dict__.pop("server_frame", None)

    def request(
        self,
        schema: type[BaseModel],
        *,
        answers: type[BaseModel],
        streams: Iterable[type[BaseModel]] = (),
        lane: Lane | Callable[[Any], Lane] = "model",
        batching: Batching | None = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator registering a handler for ``schema``: it may emit ``streams`` frames, then
        returns the ``answers`` frame that ends the request. ``lane`` says where it runs (see
        :data:`Lane`; a function of the message to choose per request); ``batching`` lets jobs
        that wait together run as one batch."""

        def register(handler: Handler) -> Handler:
            rt = RequestType(schema, (*streams, answers), (answers,), handler, lane, batching)
            self.add(rt)
            return handler

        return register

    def copy(self) -> Registry:
        return Registry(self._types.values())

    def __getitem__(self, type_: str) -> RequestType:
        return self._types[type_]

    def __iter__(self):
        return iter(self._types.values())

    # ------------------------------------------------------------------ derived
    @cached_property
    def client_frame(self) -> TypeAdapter:
        """Validates any client request (a union discriminated by ``type``)."""
        return _union([t.schema for t in self])

    @cached_property
    def server_frame(self) -> TypeAdapter:
        """Validates any frame the server sends."""
        return _union(list(self.frame_classes().values()))

    def frame_classes(self) -> dict[str, type[BaseModel]]:
        """Every server frame class by its type (hello and error first)."""
        out: dict[str, type[BaseModel]] = {"hello": HelloFrame, "error": ErrorFrame}
        for t in self:
            for f in t.frames:
                if out.setdefault(frame_type(f), f) is not f:
                    raise ValueError(f"two different frame classes are called {frame_type(f)!r}")
        return out

    def hello_requests(self) -> dict[str, RequestInfo]:
        return {t.type: t.info() for t in self}

    def json_schema(self) -> dict[str, Any]:
        """``/api/protocol``: JSON Schemas of both directions, plus each request's frames."""
        return {
            "client": self.client_frame.json_schema(),
            "server": self.server_frame.json_schema(),
            "requests": {k: v.model_dump() for k, v in self.hello_requests().items()},
        }


def _union(classes: list[type[BaseModel]]) -> TypeAdapter:
    if len(classes) == 1:
        return TypeAdapter(classes[0])
    return TypeAdapter(Annotated[Union[tuple(classes)], Field(discriminator="type")])  # noqa: UP007


#: the server's request types; ``server/handlers/`` fills it on import
REGISTRY = Registry()
request = REGISTRY.request
