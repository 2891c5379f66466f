"""Results kept in memory only: an LRU per session, bounded in bytes, and a bound on sessions."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class UnknownIdError(KeyError):
    """No item under this id: never stored, evicted, or from a previous server run."""


class Sized(Protocol):
    def nbytes(self) -> int: ...


class _Session:
    def __init__(self) -> None:
        self.items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.bytes = 0


class ResultStore:
    """Every stored result (traces, patch sweeps, ...: anything with ``nbytes()``) by id, under one
    eviction policy: least recently used first.

    Each session keeps at most ``session_bytes``; all sessions together at most ``total_bytes``
    (the least recently used session gives up its oldest item first); at most ``max_sessions``
    sessions are kept (the least recently used session goes first). An item larger than a budget
    is still kept, alone. Nothing is ever written to disk.
    """

    def __init__(
        self, session_bytes: int = 512 << 20, max_sessions: int = 64, total_bytes: int = 4 << 30
    ) -> None:
        self.session_bytes = session_bytes
        self.max_sessions = max_sessions
        self.total_bytes = total_bytes
        self._total = 0
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._owner: dict[str, str] = {}
        self._lock = threading.Lock()

    def put(self, session: str, item: Sized, prefix: str = "t") -> str:
        """Store ``item`` for ``session`` and return its new id."""
        size = int(item.nbytes())
        item_id = f"{prefix}_{secrets.token_urlsafe(9)}"
        with self._lock:
            s = self._sessions.get(session)
            if s is None:
                s = self._sessions[session] = _Session()
                while len(self._sessions) > self.max_sessions:
                    _, old = self._sessions.popitem(last=False)
                    self._total -= old.bytes
                    for old_id in old.items:
                        self._owner.pop(old_id, None)
            self._sessions.move_to_end(session)
            s.items[item_id] = (item, size)
            s.bytes += size
            self._total += size
            self._owner[item_id] = session
            while s.bytes > self.session_bytes and len(s.items) > 1:
                self._evict_oldest(session)
            while self._total > self.total_bytes and len(self._owner) > 1:
                self._evict_oldest(next(iter(self._sessions)))  # this session is the newest
        return item_id

    def _evict_oldest(self, session: str) -> None:
        s = self._sessions[session]
        old_id, (_, old_size) = s.items.popitem(last=False)
        s.bytes -= old_size
        self._total -= old_size
        self._owner.pop(old_id, None)
        if not s.items:
            del self._sessions[session]

    def get_as(self, item_id: str, kind: type[T]) -> T:
        """The item under ``item_id`` if it is a ``kind`` (UnknownIdError otherwise)."""
        item = self.get(item_id)
        if not isinstance(item, kind):
            raise UnknownIdError(item_id)
        return item

    def get(self, item_id: str) -> Any:
        """The item under ``item_id`` (UnknownIdError if unknown or evicted), now recently used."""
        with self._lock:
            session = self._owner.get(item_id)
            if session is None:
                raise UnknownIdError(item_id)
            s = self._sessions[session]
            s.items.move_to_end(item_id)
            self._sessions.move_to_end(session)
            return s.items[item_id][0]

    def clear(self) -> int:
        """Drop every stored result (e.g. the previous model's, after a switch); how many."""
        with self._lock:
            n = len(self._owner)
            self._sessions.clear()
            self._owner.clear()
            self._total = 0
        return n

    def __len__(self) -> int:
        return len(self._owner)

    @property
    def nbytes(self) -> int:
        """Bytes held over all sessions."""
        return self._total

    def session_ids(self, session: str) -> list[str]:
        """Ids held for ``session``, oldest first."""
        with self._lock:
            s = self._sessions.get(session)
            return list(s.items) if s else []
