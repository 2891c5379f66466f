"""The result store's bounds (LRU per session, bounded sessions)."""

from __future__ import annotations

import pytest

from layerscope.server.store import ResultStore, UnknownIdError


class Blob:
    def __init__(self, n: int) -> None:
        self.n = n

    def nbytes(self) -> int:
        return self.n


def test_lru_evicts_by_bytes_within_a_session():
    store = ResultStore(session_bytes=100, max_sessions=4)
    a = store.put("s", Blob(40))
    b = store.put("s", Blob(40))
    store.get(a)  # a is now the most recently used
    c = store.put("s", Blob(40))
    assert store.get(a) and store.get(c)
    with pytest.raises(UnknownIdError):
        store.get(b)
    assert store.nbytes == 80
    big = store.put("s", Blob(500))  # larger than the budget: kept alone
    assert store.session_ids("s") == [big]


def test_sessions_are_bounded_and_separate():
    store = ResultStore(session_bytes=1000, max_sessions=2)
    first = store.put("one", Blob(10))
    store.put("two", Blob(10))
    store.put("three", Blob(10))
    with pytest.raises(UnknownIdError):
        store.get(first)
    assert len(store) == 2


def test_all_sessions_together_are_bounded_least_recently_used_first():
    store = ResultStore(session_bytes=1000, max_sessions=10, total_bytes=100)
    a1 = store.put("a", Blob(40))
    b1 = store.put("b", Blob(40))
    store.get(a1)  # a is now the more recently used session
    c1 = store.put("c", Blob(40))  # 120 > 100: b (least recently used) gives up its item
    with pytest.raises(UnknownIdError):
        store.get(b1)
    assert store.get(a1) and store.get(c1)
    assert store.nbytes == 80 and store.session_ids("b") == []
    big = store.put("d", Blob(500))  # alone over the budget: kept, everything else goes
    assert len(store) == 1 and store.get(big) and store.nbytes == 500
    assert store.clear() == 1 and store.nbytes == 0
