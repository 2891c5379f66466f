"""Work done on the model thread for each request type; each returns (or streams) frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from layerscope.engine import analysis, patching
from layerscope.engine.trace import Trace, check_length, run_trace
from layerscope.errors import InputError
from layerscope.server import schemas as S
from layerscope.server.frames import layer_frame
from layerscope.server.store import UnknownIdError

if TYPE_CHECKING:
    from layerscope.server.protocol import Connection

Emit = Callable[[Any], None]


def stream_trace(
    conn: Connection, msg: S.TraceRequest | S.PatchedTraceRequest, emit: Emit
) -> Trace:
    """Run a (possibly patched) trace, emitting start, token and layer frames as they are ready."""
    model = conn.ctx.model
    n_layers = model.info.n_layers + 1
    layers = [f"h_{i}" for i in range(n_layers)]

    def start(ids: list[int], patched: list[int] | None = None) -> None:
        with conn.vocab_lock:
            vocab = conn.vocab.delta(ids)
        emit(
            S.StartFrame(
                req=msg.req,
                n_layers=n_layers,
                layers=layers,
                tokens=ids,
                n_prompt=len(ids),
                vocab=vocab,
                patched=patched,
            )
        )

    def on_token(position: int, token_id: int, text: str) -> None:
        with conn.vocab_lock:
            vocab = conn.vocab.delta([token_id])
        emit(S.TokenFrame(req=msg.req, position=position, id=token_id, vocab=vocab))

    def on_layer(layer: int, arrays: dict[str, np.ndarray]) -> None:
        with conn.vocab_lock:
            frame = layer_frame(msg.req, layer, arrays, conn.vocab)
        emit(frame)

    if isinstance(msg, S.PatchedTraceRequest):
        sweep = conn.ctx.store.get(msg.patch_id)
        if not isinstance(sweep, patching.PatchSweep):
            raise UnknownIdError(msg.patch_id)
        start(list(sweep.corrupted_ids), [msg.layer, msg.position])
        return patching.patched_trace(
            model, sweep, msg.layer, msg.position, lens_top_k=msg.lens_top_k, on_layer=on_layer
        )
    ids = conn.ctx.encode(msg.prompt, msg.chat)
    if not ids:
        raise InputError("the prompt encodes to no tokens")
    check_length(model, len(ids), msg.generate)
    start(ids)
    return run_trace(
        model,
        ids=ids,
        generate=msg.generate,
        chat=msg.chat,
        temperature=msg.temperature,
        top_k=msg.top_k,
        seed=msg.seed,
        lens_top_k=msg.lens_top_k,
        on_token=on_token,
        on_layer=on_layer,
    )


def _trace(conn: Connection, trace_id: str) -> Trace:
    trace = conn.ctx.store.get(trace_id)
    if not isinstance(trace, Trace) or trace.capture is None:
        raise UnknownIdError(trace_id)
    return trace


def _check_cell(trace: Trace, layer: int | None, position: int) -> None:
    n_layers, n_pos = trace.n_layers, len(trace.ids)
    if layer is not None and not 0 <= layer < n_layers:
        raise InputError(f"layer {layer} is outside 0..{n_layers - 1}")
    if not 0 <= position < n_pos:
        raise InputError(f"position {position} is outside 0..{n_pos - 1}")


def _vocab(conn: Connection, ids: Any) -> dict[str, str]:
    with conn.vocab_lock:
        return conn.vocab.delta(np.unique(np.asarray(ids, dtype=np.int64)).tolist())


def heads(conn: Connection, msg: S.HeadsRequest) -> S.HeadsFrame:
    trace = _trace(conn, msg.trace_id)
    _check_cell(trace, None, msg.position)
    target = (
        msg.target_id if msg.target_id is not None else int(trace.lens.top_ids[-1, msg.position, 0])
    )
    cap = trace.capture
    assert cap is not None
    hl = analysis.head_logit_lens(
        conn.ctx.model, cap.resid, cap.head_out, msg.position, target, msg.k
    )
    return S.HeadsFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        position=msg.position,
        target_id=target,
        contrib=np.round(hl.contrib.astype(np.float64), 4).tolist(),
        top_ids=hl.top_ids.astype(np.int64).tolist(),
        vocab=_vocab(conn, [*hl.top_ids.ravel().tolist(), target]),
    )


def cell(conn: Connection, msg: S.CellRequest) -> S.CellFrame:
    trace = _trace(conn, msg.trace_id)
    _check_cell(trace, msg.layer, msg.position)
    import torch

    logits = trace.layer_logits(msg.layer)[msg.position]
    probs = torch.softmax(logits.float(), dim=-1)
    top = torch.topk(probs, k=min(msg.k, probs.shape[0]))
    ids = top.indices.tolist()
    return S.CellFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        layer=msg.layer,
        position=msg.position,
        ids=ids,
        probs=np.round(top.values.double().numpy(), 5).tolist(),
        vocab=_vocab(conn, ids),
    )


def pca(conn: Connection, msg: S.PcaRequest) -> S.PcaFrame:
    trace = _trace(conn, msg.trace_id)
    cap = trace.capture
    assert cap is not None
    traj = analysis.pca_trajectories(conn.ctx.model, cap.resid, msg.positions, normed=msg.normed)
    return S.PcaFrame(
        req=msg.req,
        trace_id=msg.trace_id,
        positions=traj.positions,
        coords=np.round(traj.coords.astype(np.float64), 4).tolist(),
        explained=np.round(traj.explained.astype(np.float64), 4).tolist(),
    )


def patch(conn: Connection, msg: S.PatchRequest) -> S.PatchFrame:
    clean = conn.ctx.encode(msg.clean, False)
    corrupted = conn.ctx.encode(msg.corrupted, False)
    sweep = patching.patch_sweep(conn.ctx.model, clean, corrupted, msg.answer_id)
    patch_id = conn.ctx.store.put(conn.session, sweep, prefix="p")
    return S.PatchFrame(
        req=msg.req,
        patch_id=patch_id,
        clean=clean,
        corrupted=corrupted,
        answer_id=sweep.answer_id,
        p_clean=round(sweep.p_clean, 5),
        p_corrupted=round(sweep.p_corrupted, 5),
        prob=np.round(sweep.prob.astype(np.float64), 4).tolist(),
        restored=np.round(sweep.restored.astype(np.float64), 4).tolist(),
        vocab=_vocab(conn, [*clean, *corrupted, sweep.answer_id]),
    )


def early_exit(conn: Connection, msg: S.EarlyExitRequest) -> S.EarlyExitFrame:
    model = conn.ctx.model
    ids = conn.ctx.encode(msg.prompt, msg.chat)
    stops = model.tokenizer.stop_ids if msg.chat else frozenset()
    early = patching.early_exit_generate(model, ids, msg.layer, msg.generate, stops)
    full = patching.early_exit_generate(model, ids, model.info.n_layers, msg.generate, stops)
    return S.EarlyExitFrame(
        req=msg.req,
        layer=msg.layer,
        n_layers=model.info.n_layers + 1,
        prompt=ids,
        early=early,
        full=full,
        vocab=_vocab(conn, [*ids, *early, *full]),
    )


_HANDLERS: dict[type, Callable[[Connection, Any], Any]] = {
    S.HeadsRequest: heads,
    S.CellRequest: cell,
    S.PcaRequest: pca,
    S.PatchRequest: patch,
    S.EarlyExitRequest: early_exit,
}


def answer(conn: Connection, msg: Any) -> Any:
    """The single answer frame of a non-streaming request."""
    return _HANDLERS[type(msg)](conn, msg)
