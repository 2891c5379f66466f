"""Limits from the command line: NAME=VALUE pairs, checked."""

from __future__ import annotations

import pytest

from layerscope.server.limits import Limits


def test_pairs_override_the_defaults_and_keep_the_rest():
    lim = Limits.parse(["client_pending=32", "client-rate=12.5", "idle_seconds=none"])
    assert lim.client_pending == 32 and isinstance(lim.client_pending, int)
    assert lim.client_rate == 12.5 and lim.idle_seconds is None
    assert lim.total_pending == Limits().total_pending
    assert Limits.parse([]) == Limits()


@pytest.mark.parametrize(
    ("pair", "words"),
    [
        ("nope=3", "one of client_pending"),
        ("client_pending", "NAME=VALUE"),
        ("client_pending=many", "not a number"),
        ("client_pending=2.5", "not a number"),
        ("client_rate=0", "positive"),
        ("client_pending=none", "only idle_seconds"),
    ],
)
def test_bad_pairs_are_refused_clearly(pair, words):
    with pytest.raises(ValueError, match=words):
        Limits.parse([pair])
