"""Plotly figures of a trace: types, data shapes, labels and titles, clear errors."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from layerscope.engine import plots
from layerscope.engine.analyses.heads import head_logit_lens
from layerscope.engine.statistics import STATISTICS
from layerscope.engine.trace import Trace, run_trace
from layerscope.errors import InputError
from tiny import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def trace(model):
    return run_trace(model.lens_model, "The capital of France is", generate=3)


def _shape(trace):
    return trace.n_lens_layers, len(trace.ids)


@pytest.mark.parametrize("metric", plots.HEATMAP_METRICS)
def test_heatmap_of_every_per_position_statistic(trace, metric):
    fig = trace.plot_heatmap(metric=metric)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    hm = fig.data[0]
    n_layers, n_pos = _shape(trace)
    assert np.shape(hm.z) == (n_layers, n_pos)
    assert list(hm.y) == trace.layers
    assert len(hm.x) == n_pos and len(set(hm.x)) == n_pos  # one unique label per position
    assert fig.layout.title.text == plots.TITLES[metric]
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    values = trace.lens.arrays()[metric].astype(np.float64)
    if metric.endswith("_rank"):
        known = values >= 1
        np.testing.assert_allclose(np.asarray(hm.z)[known], np.log10(values[known]), rtol=1e-12)
        assert np.isnan(np.asarray(hm.z, dtype=float)[~known]).all()
    else:
        np.testing.assert_array_equal(np.asarray(hm.z), values)
    top = trace.lens.top_ids[-1, 0, 0]
    assert hm.text[-1][0] == plots.token_label(trace.token_text[int(top)])


def test_every_heatmap_metric_has_a_plain_title():
    assert set(plots.TITLES) == {s.name for s in STATISTICS if not s.per_k}


def test_axis_labels_show_token_text(trace):
    fig = plots.heatmap(trace)
    first = trace.token_text[trace.ids[1]]
    assert fig.data[0].x[1] == f"1 {plots.token_label(first)}"
    assert plots.token_label(" is\n") == "·is↵" and plots.token_label("") == "∅"
    assert plots.token_label("a" * 30, max_len=5) == "aaaa…"


@pytest.mark.parametrize("metric", ["top_ids", "top_probs", "nonsense"])
def test_unknown_metric_is_a_clear_error(trace, metric):
    with pytest.raises(InputError, match=r"unknown heatmap metric .* choose one of final_rank"):
        trace.plot_heatmap(metric=metric)


def test_stripes_are_positions_by_layers_of_confidence(trace):
    fig = trace.plot_stripes()
    assert isinstance(fig, go.Figure)
    hm = fig.data[0]
    n_layers, n_pos = _shape(trace)
    z = np.asarray(hm.z)
    assert z.shape == (n_pos, n_layers)
    rank = trace.lens.final_rank.T
    np.testing.assert_allclose(z[rank == 1], 1.0)
    np.testing.assert_allclose(z, 1 - np.minimum(1, np.log10(rank) / 3))  # the web app's ramp
    assert (z[:, -1] == 1.0).all()  # the final layer ranks its own answer first
    assert ((z >= 0.0) & (z <= 1.0)).all()
    assert "Confidence stripes" in fig.layout.title.text
    assert list(hm.x) == trace.layers and len(hm.y) == n_pos


def test_head_contributions(model, trace):
    cap = trace.capture
    target = int(trace.lens.top_ids[-1, 2, 0])
    hl = head_logit_lens(model.lens_model, cap.resid, cap.head_out, 2, target)
    text = {i: model.tokenizer.token_text(i) for i in range(model.info.vocab_size)}
    fig = plots.head_contributions(hl, text)
    hm = fig.data[0]
    assert np.shape(hm.z) == (model.info.n_blocks, model.info.n_heads)
    np.testing.assert_allclose(np.asarray(hm.z), hl.contrib, rtol=1e-6)
    assert hm.zmid == 0.0
    assert plots.token_label(text[target], 24) in fig.layout.title.text
    assert "position 2" in fig.layout.title.text


def test_plot_heads_defaults_to_the_final_answer_at_the_last_position(trace):
    fig = trace.plot_heads()
    assert isinstance(fig, go.Figure)
    last = len(trace.ids) - 1
    assert f"position {last}" in fig.layout.title.text
    answer = trace.token_text[int(trace.lens.top_ids[-1, last, 0])]
    assert plots.token_label(answer, 24) in fig.layout.title.text
    other = trace.plot_heads(position=1, target_id=5)
    assert "position 1" in other.layout.title.text
    with pytest.raises(InputError, match="position 99 is outside"):
        trace.plot_heads(position=99)


def test_attention_pattern(trace):
    fig = trace.plot_attention(1, 2)
    hm = fig.data[0]
    n = len(trace.ids)
    z = np.asarray(hm.z, dtype=float)
    assert z.shape == (n, n)
    expected = trace.capture.attn[1, 2].float().cpu().numpy()
    lower = np.tril(np.ones((n, n), dtype=bool))
    np.testing.assert_allclose(z[lower], expected[lower], rtol=1e-6)
    assert np.isnan(z[~lower]).all()
    np.testing.assert_allclose(np.nansum(z, axis=1), 1.0, rtol=1e-5)  # each query's weights
    assert "head 2 of block 1" in fig.layout.title.text


@pytest.mark.parametrize(("block", "head", "message"), [(9, 0, "block 9"), (0, 9, "head 9")])
def test_attention_out_of_range(trace, block, head, message):
    with pytest.raises(InputError, match=message):
        trace.plot_attention(block, head)


def test_attention_needs_captured_attention(model):
    t = run_trace(model.lens_model, "Hello world", attention=False)
    with pytest.raises(InputError, match="no attention patterns"):
        t.plot_attention(0, 0)


def test_figures_of_a_loaded_trace(trace, tmp_path):
    loaded = Trace.load(trace.save(tmp_path / "t.lstrace.json", attention=True))
    assert np.shape(loaded.plot_heatmap("kl_final").data[0].z) == _shape(trace)
    assert np.shape(loaded.plot_stripes().data[0].z) == _shape(trace)[::-1]
    z = np.asarray(loaded.plot_attention(0, 1).data[0].z, dtype=float)
    ref = np.asarray(trace.plot_attention(0, 1).data[0].z, dtype=float)
    np.testing.assert_allclose(z, ref, atol=1e-3)  # saved as float16
    fig = loaded.plot_heatmap()
    assert fig.to_json()  # serialisable as the notebook renders it
