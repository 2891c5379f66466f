"""What handlers and routes share: the server's context, and the small one each request gets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from layerscope.engine.trace import Trace, prompt_ids
from layerscope.models.base import LensModel
from layerscope.server.store import ResultStore, UnknownIdError
from layerscope.server.worker import Cancelled, ModelWorker


@dataclass
class ServerContext:
    """The model, its worker and the result store: one per app."""

    model: LensModel
    worker: ModelWorker = field(default_factory=ModelWorker)
    store: ResultStore = field(default_factory=ResultStore)

    def encode(self, prompt: str, chat: bool) -> list[int]:
        """Prompt ids exactly as a trace with these settings will see them (InputError if empty)."""
        return prompt_ids(self.model, prompt, None, chat)


class VocabTracker:
    """Remembers which token texts a connection has been sent; hands out only the new ones."""

    def __init__(self, model: LensModel) -> None:
        self._tok = model.tokenizer
        self._sent: set[int] = set()
        self._lock = threading.Lock()

    def delta(self, ids: Iterable[int]) -> dict[str, str]:
        new: dict[str, str] = {}
        with self._lock:
            for i in ids:
                i = int(i)
                if i not in self._sent:
                    self._sent.add(i)
                    new[str(i)] = self._tok.token_text(i)
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

    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return time.perf_counter() - self.started
