"""What handlers and routes share: the server's context, and the small one each request gets."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from layerscope.engine.checkpoints import between_blocks
from layerscope.engine.trace import Trace, prompt_ids
from layerscope.errors import InputError, LayerscopeError, ModelLoadError
from layerscope.models.base import LensModel
from layerscope.server.limits import Limits
from layerscope.server.metrics import Metrics, SessionStats
from layerscope.server.models import CatalogModels, ModelSource
from layerscope.server.store import ResultStore, UnknownIdError
from layerscope.server.worker import Cancelled, ModelWorker

Listener = Callable[[str], None]
"""Hears a frame's JSON sent to every connection (called on the model worker's thread)."""


@dataclass(frozen=True)
class Switched:
    """What a model switch did."""

    previous: str
    model: LensModel
    dropped: int  # stored results of the previous model, now gone
    seconds: float  # time spent loading


@dataclass
class ServerContext:
    """The model, its worker, the result store and the models it may switch to: one per app.

    ``generation`` counts model switches; ``listeners`` are the open connections, told of a switch.
    """

    model: LensModel
    worker: ModelWorker = field(default_factory=ModelWorker)
    store: ResultStore = field(default_factory=ResultStore)
    models: ModelSource = field(default_factory=CatalogModels)
    limits: Limits = field(default_factory=Limits)
    metrics: Metrics = field(default_factory=Metrics)
    generation: int = 0
    listeners: set[Listener] = field(default_factory=set)
    _listeners_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.worker.around = self._with_checkpoints

    def _with_checkpoints(self, fn: Callable[[], object]) -> object:
        """Run a model job with the worker's checkpoints between the blocks of every pass."""
        with between_blocks(self.model, self.worker.checkpoint):
            return fn()

    def encode(self, prompt: str, chat: bool) -> list[int]:
        """Prompt ids exactly as a trace with these settings will see them (InputError if empty)."""
        return prompt_ids(self.model, prompt, None, chat)

    # ------------------------------------------------------------------ switching models
    def switch_model(self, name: str) -> Switched:
        """Load ``name`` and serve it instead of the current model. Run this on the worker.

        Jobs queued before this one have finished on the old model; jobs after it see the new
        one. Stored results (traces of the old model) are dropped. A failed load raises a
        :class:`LayerscopeError` and leaves the old model serving, its results untouched.
        """
        choices = {c.name: c for c in self.models.choices(self.model.info.name)}
        choice = choices.get(name)
        if choice is None:
            known = ", ".join(sorted(choices)) or "none"
            raise InputError(f"unknown model {name!r}: this server can switch to {known}")
        if not choice.available:
            raise InputError(f"{name} cannot be loaded here: {choice.reason}")
        previous = self.model.info.name
        if name == previous:
            return Switched(previous=previous, model=self.model, dropped=0, seconds=0.0)
        start = time.perf_counter()
        try:
            model = self.models.load(name, self.model.device)
        except LayerscopeError as exc:
            raise ModelLoadError(
                f"could not load {name}: {exc} (still serving {previous})"
            ) from exc
        except Exception as exc:  # a broken model must never take the server down
            raise ModelLoadError(
                f"could not load {name}: {type(exc).__name__}: {exc} (still serving {previous})"
            ) from exc
        seconds = time.perf_counter() - start
        self.model = model
        self.generation += 1
        dropped = self.store.clear()
        gc.collect()  # the old model's weights go now, not at some later collection
        return Switched(previous=previous, model=model, dropped=dropped, seconds=seconds)

    def add_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            self.listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            self.listeners.discard(listener)

    def broadcast(self, frame: BaseModel, exclude: Listener | None = None) -> None:
        """Send ``frame`` to every open connection but ``exclude``."""
        text = frame.model_dump_json()
        with self._listeners_lock:
            targets = [x for x in self.listeners if x != exclude]  # bound methods: ==, not is
        for listener in targets:
            listener(text)


class VocabTracker:
    """Remembers which token texts a connection has been sent; hands out only the new ones.

    After a model switch it starts over: every id the new model mentions is sent again with the
    new tokenizer's text.
    """

    def __init__(self, server: ServerContext) -> None:
        self._server = server
        self._generation = server.generation
        self._sent: set[int] = set()
        self._lock = threading.Lock()

    def delta(self, ids: Iterable[int]) -> dict[str, str]:
        new: dict[str, str] = {}
        with self._lock:
            if self._generation != self._server.generation:
                self._generation = self._server.generation
                self._sent.clear()
            tok = self._server.model.tokenizer
            for i in ids:
                i = int(i)
                if i not in self._sent:
                    self._sent.add(i)
                    new[str(i)] = tok.token_text(i)
        return new


@dataclass
class RequestContext:
    """What one handler gets: the model, the store, the connection's token table and ``emit``.

    Handlers run on the model worker's thread. ``emit`` sends a frame before the terminal one
    (streaming); it raises :class:`Cancelled` once the client has gone.
    """

    server: ServerContext
    session: str
    req: int
    vocabulary: VocabTracker
    send: Callable[[str], None]  # a frame's JSON, on its way to the client
    closed: threading.Event = field(default_factory=threading.Event)
    listener: Listener | None = None  # this connection's broadcast listener, if any
    stats: SessionStats | None = None  # this connection's usage (None over REST)
    request_id: str = ""  # in log lines and internal error messages
    started: float = field(default_factory=time.perf_counter)
    bytes_emitted: int = 0

    @property
    def model(self) -> LensModel:
        return self.server.model

    @property
    def store(self) -> ResultStore:
        return self.server.store

    def encode(self, prompt: str, chat: bool) -> list[int]:
        return self.server.encode(prompt, chat)

    def stored_trace(self, trace_id: str) -> Trace:
        """A stored trace that kept its activations (UnknownIdError otherwise)."""
        trace = self.store.get_as(trace_id, Trace)
        if trace.capture is None:
            raise UnknownIdError(trace_id)
        return trace

    def vocab(self, ids: Iterable[int] | np.ndarray) -> dict[str, str]:
        """Texts of the ids among ``ids`` this connection has not been sent yet."""
        flat = np.unique(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids))
        return self.vocabulary.delta(flat.astype(np.int64).tolist())

    def emit(self, frame: BaseModel) -> None:
        if self.closed.is_set():
            raise Cancelled()
        text = frame.model_dump_json()
        self.bytes_emitted += len(text.encode())
        self.send(text)
        self.checkpoint()  # quick requests of others go now; stops if gone

    def checkpoint(self) -> None:
        """For a handler's long loop that runs no forward pass: lets quick requests in, and
        stops (:class:`Cancelled`) if the client has gone."""
        self.server.worker.checkpoint()

    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return time.perf_counter() - self.started
