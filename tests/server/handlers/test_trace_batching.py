"""``trace`` batching: jobs that share a forward pass get exactly the frames they get alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from layerscope.engine.batching import batch_is_exact
from layerscope.engine.trace import Trace
from layerscope.errors import InputError
from layerscope.server.context import RequestContext, ServerContext, VocabTracker
from layerscope.server.handlers import REGISTRY
from layerscope.server.handlers import trace as trace_handler
from layerscope.server.handlers.trace import (
    DoneFrame,
    TraceRequest,
    batch_key,
    run_batch,
    trace,
)
from layerscope.server.worker import Cancelled

PROMPT = "The capital of France is Paris. The"
VOLATILE = {"trace_id", "timings"}  # differ between any two runs


@pytest.fixture(scope="module")
def server():
    from tiny import tiny_model

    return ServerContext(model=tiny_model("llama").lens_model)


def context(server, req: int, session: str, on_send=None) -> tuple[RequestContext, list[dict]]:
    sent: list[dict] = []

    def send(text: str) -> None:
        sent.append(json.loads(text))
        if on_send is not None:
            on_send(sent)

    ctx = RequestContext(
        server=server, session=session, req=req, vocabulary=VocabTracker(server), send=send
    )
    return ctx, sent


def contexts(
    server, msgs: list[TraceRequest], prefix: str, on_send=None
) -> tuple[list[RequestContext], list[list[dict]]]:
    """One context per request, each of its own session (``on_send`` for the first only)."""
    pairs = [
        context(server, m.req, f"{prefix}{j:04d}".ljust(12, "x"), on_send if j == 0 else None)
        for j, m in enumerate(msgs)
    ]
    return [c for c, _ in pairs], [sent for _, sent in pairs]


def requests(server, n: int) -> list[TraceRequest]:
    """``n`` plain trace requests of one length: the prompt, then raw ids of its length."""
    length = len(server.encode(PROMPT, False))
    msgs = [TraceRequest(req=10, prompt=PROMPT)]
    for j in range(1, n):
        msgs.append(
            TraceRequest(req=10 + j, ids=[(7 * j + 3 * p) % 300 + 5 for p in range(length)])
        )
    return msgs


def alone(server, msg: TraceRequest, session: str) -> tuple[list[dict], dict]:
    ctx, sent = context(server, msg.req, session)
    done = trace(ctx, msg)
    return sent, json.loads(done.model_dump_json())


def strip(frame: dict) -> dict:
    return {k: v for k, v in frame.items() if k not in VOLATILE}


def assert_same_answer(got: tuple[list[dict], dict], want: tuple[list[dict], dict]) -> None:
    (sent, done), (want_sent, want_done) = got, want
    assert sent == want_sent  # start and every layer frame, vocab deltas included
    assert strip(done) == strip(want_done)
    assert set(done["timings"]) == {*want_done["timings"], "batch"}


def answered(ctxs, msgs) -> list:
    """Run a batch as the worker does; each job's answer, in order (checking each is given once
    and only then)."""
    got: dict[int, object] = {}

    def finish(i, result):
        assert i not in got, f"job {i} answered twice"
        got[i] = result

    run_batch(ctxs, msgs, finish)
    assert sorted(got) == list(range(len(msgs)))
    return [got[i] for i in range(len(msgs))]


def stored(server, trace_id: str) -> Trace:
    return server.store.get_as(trace_id, Trace)


def test_a_batch_answers_every_job_as_if_it_ran_alone(server):
    msgs = requests(server, 3)
    want = [alone(server, m, f"alone{j:07d}") for j, m in enumerate(msgs)]
    ctxs, sents = contexts(server, msgs, "batch")
    results = answered(ctxs, msgs)
    assert all(isinstance(r, DoneFrame) for r in results)
    shared = batch_is_exact(server.model, len(want[0][0][0]["tokens"]), 3)
    for j, (ctx, sent, result) in enumerate(zip(ctxs, sents, results, strict=True)):
        done = json.loads(result.model_dump_json())
        assert_same_answer((sent, done), want[j])
        assert done["timings"]["batch"] == (3 if shared else 1)
        assert server.store.session_ids(ctx.session) == [done["trace_id"]]  # its own session
        got, single = stored(server, done["trace_id"]), stored(server, want[j][1]["trace_id"])
        for name, a in single.lens.arrays().items():
            assert np.array_equal(got.lens.arrays()[name], a, equal_nan=a.dtype.kind == "f")
        assert got.capture is not None and got.model is server.model


def test_one_bad_or_gone_job_never_fails_the_others(server):
    good = requests(server, 2)
    length = len(good[0].model_dump()["ids"] or server.encode(PROMPT, False))
    bad = TraceRequest(req=20, ids=[10**6] * length)  # out of the vocabulary
    gone = TraceRequest(req=21, ids=good[1].ids)
    msgs = [good[0], bad, gone, good[1]]
    ctxs, sents = contexts(server, msgs, "mixed")
    ctxs[2].closed.set()  # its client left while it waited
    results = answered(ctxs, msgs)
    assert isinstance(results[1], InputError) and "out of range" in str(results[1])
    assert isinstance(results[2], Cancelled)
    assert sents[1] == [] and sents[2] == []
    for j in (0, 3):
        done = json.loads(results[j].model_dump_json())
        assert_same_answer((sents[j], done), alone(server, msgs[j], f"again{j:07d}"))


def test_a_client_leaving_mid_stream_frees_only_its_own_job(server):
    msgs = requests(server, 3)

    def leave_after_two_frames(sent: list[dict]) -> None:
        if len(sent) == 2:  # start + the first layer
            ctxs[0].closed.set()

    ctxs, sents = contexts(server, msgs, "leave", leave_after_two_frames)
    results = answered(ctxs, msgs)
    assert isinstance(results[0], Cancelled) and len(sents[0]) == 2
    assert server.store.session_ids(ctxs[0].session) == []  # nothing stored for it
    for j in (1, 2):
        done = json.loads(results[j].model_dump_json())
        assert_same_answer((sents[j], done), alone(server, msgs[j], f"stay{j:08d}"))


def test_keys_group_only_plain_traces_of_one_length_and_settings(server, monkeypatch):
    ctx, _ = context(server, 1, "keys0000000")
    plain = requests(server, 2)
    key = batch_key(ctx, plain[0])
    n_tok = len(server.encode(PROMPT, False))
    if not batch_is_exact(server.model, n_tok, 2):
        assert key is None  # this machine rounds a batch of this length differently
        return
    assert key is not None and batch_key(ctx, plain[1]) == key  # prompt or ids: same length
    shorter = TraceRequest(req=2, ids=plain[1].ids[:-4])
    assert batch_key(ctx, shorter) != key
    for change in ({"chat": True}, {"lens_top_k": 3}, {"seed": 5}, {"temperature": 0.5}):
        assert batch_key(ctx, plain[1].model_copy(update=change)) != key
    assert batch_key(ctx, plain[1].model_copy(update={"req": 99})) == key
    assert batch_key(ctx, plain[0].model_copy(update={"generate": 2})) is None
    ablate = {"kind": "ablate", "heads": [[0, 1]]}
    assert batch_key(ctx, TraceRequest(req=3, prompt=PROMPT, interventions=[ablate])) is None
    assert batch_key(ctx, TraceRequest(req=4, prompt="   ")) is None  # its own run says why
    monkeypatch.setattr(server, "generation", server.generation + 1)  # a model switch
    assert batch_key(ctx, plain[0]) != key
    monkeypatch.setattr(trace_handler, "MAX_BATCH_TOKENS", n_tok - 1)
    assert batch_key(ctx, plain[0]) is None


def test_trace_is_registered_with_batching():
    batching = REGISTRY["trace"].batching
    assert batching is not None and batching.key is batch_key and batching.run is run_batch
    assert batching.max_size == 8


def test_each_job_is_answered_as_soon_as_its_own_trace_is_done(server):
    msgs = requests(server, 3)
    ctxs, sents = contexts(server, msgs, "early")
    frames_of_last_when_first_answered: list[int] = []

    def finish(i, result):
        assert isinstance(result, DoneFrame)
        if i == 0:
            frames_of_last_when_first_answered.append(len(sents[2]))

    run_batch(ctxs, msgs, finish)
    # the first job's done frame went out before the last job's lens streamed its layers
    assert frames_of_last_when_first_answered == [1]  # only its start frame
