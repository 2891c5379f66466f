"""Plotly figures of a trace, for notebooks and papers (each returns a ``go.Figure``).

- :func:`heatmap`: one lens statistic at every layer (rows) and position (columns);
- :func:`stripes`: per position, how sure every layer is of the final answer (its rank);
- :func:`head_contributions`: each attention head's direct logit contribution (blocks × heads);
- :func:`attention`: one head's attention pattern (queries × keys).

Token text is shown as the web app shows it: spaces as ``·``, newlines as ``↵``, tabs as ``⇥``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from layerscope.engine.analyses.heads import HeadLens
from layerscope.engine.statistics import BY_NAME, STATISTICS
from layerscope.engine.trace import Trace
from layerscope.errors import InputError

#: the web app's confidence ramp: yellow (unsure) → deep blue (sure)
RAMP = ["#f6c945", "#7fbf7b", "#2b8cbe", "#253494"]
RAMP_SCALE = [[i / (len(RAMP) - 1), c] for i, c in enumerate(RAMP)]
#: ranks at or beyond this count as no confidence in the stripes (as in the web app)
STRIPE_RANK_FLOOR = 1000
#: above this many positions, cell text is left to the hover
MAX_CELL_TEXT_POSITIONS = 32

#: what a heatmap of each per-position statistic shows, in plain words
TITLES: dict[str, str] = {
    "final_rank": "Rank of the model's final answer when read at each layer (1 = top)",
    "final_prob": "Probability of the model's final answer when read at each layer",
    "next_rank": "Rank of the actual next token when read at each layer (1 = top)",
    "next_prob": "Probability of the actual next token when read at each layer",
    "entropy": "Uncertainty (entropy, nats) of each layer's prediction",
    "kl_final": "How far each layer's prediction is from the final one (KL, nats)",
}
HEATMAP_METRICS: tuple[str, ...] = tuple(s.name for s in STATISTICS if not s.per_k)


def token_label(text: str | None, max_len: int = 14) -> str:
    """A token's text with visible whitespace, clipped to ``max_len`` characters."""
    if text is None:
        return "…"
    s = text.replace("\n", "↵").replace("\t", "⇥").replace(" ", "·") or "∅"
    return s if len(s) <= max_len else s[: max_len - 1] + "…"


def position_labels(trace: Trace) -> list[str]:
    """One unique axis label per position: ``"<position> <token>"``."""
    return [f"{t} {token_label(trace.token_text.get(i))}" for t, i in enumerate(trace.ids)]


def heatmap(trace: Trace, metric: str = "final_prob") -> go.Figure:
    """``metric`` (a per-position lens statistic) at every layer × position.

    Each cell shows (or, for long traces, hovers) the token that layer predicts there; rank
    metrics are coloured on a log scale.
    """
    if metric not in HEATMAP_METRICS:
        choices = ", ".join(HEATMAP_METRICS)
        raise InputError(f"unknown heatmap metric {metric!r}; choose one of {choices}")
    values = np.asarray(trace.lens.arrays()[metric], dtype=np.float64)
    is_rank = metric.endswith("_rank")
    if is_rank:
        values = np.where(values >= 1, values, np.nan)  # next_rank is -1 where unknown
    top = trace.lens.top_ids[:, :, 0]
    cell_text = [[token_label(trace.token_text.get(int(i))) for i in row] for row in top]
    x = position_labels(trace)
    trace_kw: dict[str, Any] = {}
    if len(trace.ids) <= MAX_CELL_TEXT_POSITIONS:
        trace_kw = {"texttemplate": "%{text}", "textfont": {"size": 9}}
    z = np.log10(values) if is_rank else values
    colorbar: dict[str, Any] = {"title": {"text": metric}}
    if is_rank:
        top_tick = max(1, int(np.ceil(np.nanmax(z, initial=0.0))))
        colorbar.update(
            tickvals=list(range(top_tick + 1)), ticktext=[f"{10**i:,}" for i in range(top_tick + 1)]
        )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=list(trace.layers),
            text=cell_text,
            customdata=values,
            hovertemplate=(
                "layer %{y}, position %{x}<br>predicts %{text}<br>"
                f"{metric} = %{{customdata:.4~g}}<extra></extra>"
            ),
            colorscale=RAMP_SCALE,
            reversescale=is_rank or metric in ("entropy", "kl_final"),
            colorbar=colorbar,
            **trace_kw,
        )
    )
    fig.update_layout(
        title=TITLES.get(metric, f"{metric}: {BY_NAME[metric].meaning}"),
        xaxis_title="input token (each column predicts the token after it)",
        yaxis_title="layer",
    )
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_yaxes(type="category")
    return fig


def stripes(trace: Trace) -> go.Figure:
    """The confidence stripes: per position (row), the final answer's rank at every layer.

    Colour is the web app's confidence, ``1 - log10(rank) / 3``: deep blue where the layer already
    ranks the final answer first, yellow from rank 1,000 on.
    """
    rank = np.asarray(trace.lens.final_rank, dtype=np.float64).T  # [T, L+1]
    confidence = 1.0 - np.minimum(1.0, np.log10(np.maximum(rank, 1.0)) / 3.0)
    final = [token_label(trace.token_text.get(int(i))) for i in trace.lens.top_ids[-1, :, 0]]
    answer = np.array([[f] * rank.shape[1] for f in final], dtype=object)
    fig = go.Figure(
        go.Heatmap(
            z=confidence,
            x=list(trace.layers),
            y=position_labels(trace),
            zmin=0.0,
            zmax=1.0,
            customdata=np.dstack([rank, answer]),
            hovertemplate=(
                "position %{y}, layer %{x}<br>final answer %{customdata[1]} has rank "
                "%{customdata[0]}<extra></extra>"
            ),
            colorscale=RAMP_SCALE,
            ygap=2,
            colorbar={
                "title": {"text": "rank of the final answer"},
                "tickvals": [1.0, 2 / 3, 1 / 3, 0.0],
                "ticktext": ["1", "10", "100", f"≥ {STRIPE_RANK_FLOOR:,}"],
            },
        )
    )
    fig.update_layout(
        title="Confidence stripes: how early each layer ranks the model's final answer first",
        xaxis_title="layer",
        yaxis_title="input token",
        height=max(300, 22 * len(trace.ids) + 160),
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def head_contributions(head_lens: HeadLens, token_text: Mapping[int, str]) -> go.Figure:
    """Each head's direct contribution (logit units) to the target token, blocks × heads.

    Hover lists the tokens each head's output pushes up most; red raises the target's logit, blue
    lowers it.
    """
    contrib = np.asarray(head_lens.contrib, dtype=np.float64)
    n_blocks, n_heads = contrib.shape
    pushes = [
        [
            ", ".join(token_label(token_text.get(int(i))) for i in head_lens.top_ids[b, h])
            for h in range(n_heads)
        ]
        for b in range(n_blocks)
    ]
    bound = float(np.abs(contrib).max()) or 1.0
    target = token_label(token_text.get(head_lens.target_id), max_len=24)
    fig = go.Figure(
        go.Heatmap(
            z=contrib,
            x=[str(h) for h in range(n_heads)],
            y=[str(b) for b in range(n_blocks)],
            text=pushes,
            hovertemplate=(
                "block %{y}, head %{x}<br>contribution %{z:.3f}<br>pushes up: %{text}"
                "<extra></extra>"
            ),
            colorscale="RdBu",
            reversescale=True,
            zmid=0.0,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": {"text": "logit"}},
        )
    )
    fig.update_layout(
        title=(
            f"How much each attention head directly raises the logit of “{target}” "
            f"at position {head_lens.position}"
        ),
        xaxis_title="head",
        yaxis_title="block",
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def attention_of(trace: Trace) -> np.ndarray:
    """The attention probabilities [L, H, T, T] of ``trace`` (captured, or saved as an extra)."""
    cap = trace.capture
    if cap is not None and cap.attn is not None:
        return cap.attn.detach().float().cpu().numpy()
    saved = getattr(trace, "extras", {}).get("attn")
    if saved is not None:
        return np.asarray(saved, dtype=np.float32)
    raise InputError(
        "this trace holds no attention patterns; trace again with a model and attention=True"
    )


def attention(trace: Trace, block: int, head: int) -> go.Figure:
    """Attention pattern of ``head`` in ``block``: each query position (row) over the keys."""
    attn = attention_of(trace)
    n_blocks, n_heads = attn.shape[:2]
    if not 0 <= block < n_blocks:
        raise InputError(f"block {block} is outside 0..{n_blocks - 1}")
    if not 0 <= head < n_heads:
        raise InputError(f"head {head} is outside 0..{n_heads - 1}")
    pattern = attn[block, head].astype(np.float64)
    pattern[np.triu_indices_from(pattern, k=1)] = np.nan  # a causal model never looks ahead
    labels = position_labels(trace)
    fig = go.Figure(
        go.Heatmap(
            z=pattern,
            x=labels,
            y=labels,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            hovertemplate="query %{y} reads key %{x}<br>weight %{z:.3f}<extra></extra>",
            colorbar={"title": {"text": "weight"}},
        )
    )
    fig.update_layout(
        title=f"Where head {head} of block {block} looks: each row's attention over earlier tokens",
        xaxis_title="key (the token attended to)",
        yaxis_title="query (the token attending)",
    )
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_yaxes(type="category", autorange="reversed")
    return fig
