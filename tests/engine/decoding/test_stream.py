"""Plain streamed generation: the same tokens as a trace's generation, stops, limits."""

from __future__ import annotations

import itertools

import pytest

from layerscope.engine.decoding.stream import stream_tokens
from layerscope.engine.trace import run_trace
from layerscope.errors import InputError
from tiny import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def test_greedy_tokens_equal_the_trace_generation(model):
    ids = model.tokenizer.encode("The capital of France is")
    got = list(stream_tokens(model, ids, 8, stop_ids=frozenset()))
    tr = run_trace(model, ids=ids, generate=8, attention=False)
    assert got == tr.ids[len(ids) :]
    assert len(got) == 8


def test_sampling_is_seeded(model):
    ids = model.tokenizer.encode("Hello world")
    a = list(stream_tokens(model, ids, 6, temperature=1.0, seed=3, stop_ids=frozenset()))
    b = list(stream_tokens(model, ids, 6, temperature=1.0, seed=3, stop_ids=frozenset()))
    assert a == b


def test_stops_before_a_stop_id(model):
    ids = model.tokenizer.encode("The capital of France is")
    free = list(stream_tokens(model, ids, 6, stop_ids=frozenset()))
    stopped = list(stream_tokens(model, ids, 6, stop_ids=frozenset({free[2]})))
    assert stopped == free[: free.index(free[2])]


def test_limits(model):
    with pytest.raises(InputError, match="context"):
        list(stream_tokens(model, [1] * 100, 100))
    with pytest.raises(InputError, match="empty"):
        list(stream_tokens(model, [], 3))


def test_no_repeat_ngram_blocks_repeats(model):
    ids = model.tokenizer.encode("1 2 3 4 5 6 7 8 9 10. Hello world!")
    free = list(stream_tokens(model, ids, 100, stop_ids=frozenset()))
    blocked = list(stream_tokens(model, ids, 100, stop_ids=frozenset(), no_repeat_ngram=2))
    pairs = list(itertools.pairwise(blocked))
    assert len(pairs) == len(set(pairs))  # no bigram twice
    seen, first_repeat = set(), None  # greedy output is unchanged up to its first repeat
    for i, pair in enumerate(itertools.pairwise(free)):
        if pair in seen:
            first_repeat = i + 1
            break
        seen.add(pair)
    assert first_repeat is not None  # the random tiny model does repeat itself
    assert (
        blocked[:first_repeat] == free[:first_repeat]
        and blocked[first_repeat] != free[first_repeat]
    )
    with pytest.raises(InputError):
        list(stream_tokens(model, ids, 3, no_repeat_ngram=0))
