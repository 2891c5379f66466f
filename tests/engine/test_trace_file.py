"""The trace file: exact round trips, and clear errors for future versions and corrupt files."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import layerscope
from layerscope.engine.interventions import Ablate, Steer
from layerscope.engine.statistics import NAMES
from layerscope.engine.trace import Trace, run_trace
from layerscope.engine.trace_file import (
    VERSION,
    SavedTrace,
    dumps,
    from_document,
    load_trace,
    save_trace,
    to_document,
)
from layerscope.errors import InputError, LayerscopeError, TraceFileError
from tiny import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def trace(model):
    d = model.info.d_model
    return run_trace(
        model.lens_model,
        "The capital of France is",
        generate=6,
        temperature=0.8,
        seed=3,
        interventions=[
            Ablate(point="head_out", block=1, heads=(0, 2)),
            Steer(point="resid_post", block=0, vector=[0.25] * d, strength=0.5, positions=[1]),
        ],
    )


@pytest.fixture
def saved(trace, tmp_path):
    path = tmp_path / "t.lstrace.json"
    trace.save(path)
    return path


def rewrite(path, edit):
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_save_load_save_is_byte_identical(trace, saved, tmp_path):
    loaded = layerscope.Trace.load(saved)
    again = loaded.save(tmp_path / "again.lstrace.json")
    assert again.read_bytes() == saved.read_bytes()
    assert (
        saved.read_bytes().endswith(b"\n") and b'"format":"layerscope-trace"' in saved.read_bytes()
    )
    assert isinstance(loaded, Trace) and isinstance(loaded, SavedTrace)


def test_loaded_trace_equals_the_original(trace, saved):
    loaded = Trace.load(saved)
    assert loaded.ids == trace.ids and len(trace.ids) > trace.n_prompt  # generated tokens kept
    assert loaded.n_prompt == trace.n_prompt
    assert loaded.layers == trace.layers and loaded.model_name == trace.model_name
    assert loaded.token_text == trace.token_text
    assert loaded.settings == trace.settings
    assert loaded.to_dict() == trace.to_dict()
    for name, a in trace.lens.arrays().items():
        b = loaded.lens.arrays()[name]
        assert b.dtype == a.dtype and b.shape == a.shape, name
        assert a.tobytes() == b.tobytes(), name  # bit for bit, NaN included
    np.testing.assert_array_equal(loaded.lock_in(), trace.lock_in())
    assert loaded.text_at(1) == trace.text_at(1)


def test_interventions_and_nan_survive(trace, saved):
    loaded = Trace.load(saved)
    kinds = [iv["kind"] for iv in loaded.interventions]
    assert kinds == ["ablate", "steer"]
    assert loaded.interventions == trace.interventions
    assert loaded.interventions[1]["vector"] == [0.25] * len(loaded.interventions[1]["vector"])
    assert np.isnan(trace.lens.next_prob[:, -1]).all()  # the next token of the last is unknown
    assert np.isnan(loaded.lens.next_prob[:, -1]).all()
    assert not np.isnan(loaded.lens.next_prob[:, :-1]).any()


def test_model_facts_are_written(trace, model):
    doc = to_document(trace)
    info = model.info
    assert doc["model"] == {
        "name": info.name,
        "n_lens_layers": info.n_lens_layers,
        "n_blocks": info.n_blocks,
        "n_heads": info.n_heads,
        "d_model": info.d_model,
    }
    assert doc["version"] == VERSION == 1
    assert [s["name"] for s in doc["statistics"]] == list(NAMES)
    assert doc["lens"]["top_ids"]["shape"] == list(trace.lens.top_ids.shape)
    raw = base64.b64decode(doc["lens"]["final_rank"]["data"])
    np.testing.assert_array_equal(
        np.frombuffer(raw, "<i4").reshape(trace.lens.final_rank.shape), trace.lens.final_rank
    )


def test_document_round_trip_in_memory(trace):
    doc = json.loads(dumps(to_document(trace)))
    assert dumps(to_document(from_document(doc))) == dumps(to_document(trace))


def test_attention_extra_round_trips_and_unknown_extras_are_kept(trace, tmp_path):
    path = save_trace(
        trace,
        tmp_path / "a.lstrace.json",
        attention=True,
        extras={"head_contrib": np.arange(6, dtype=np.float32).reshape(2, 3)},
    )
    loaded = load_trace(path)
    attn = trace.capture.attn.float().cpu().numpy()
    assert loaded.extras["attn"].dtype == np.float16
    np.testing.assert_allclose(loaded.extras["attn"], attn, atol=1e-3)
    np.testing.assert_array_equal(loaded.extras["head_contrib"], [[0, 1, 2], [3, 4, 5]])
    assert loaded.save(tmp_path / "b.lstrace.json").read_bytes() == path.read_bytes()


def test_loaded_trace_needs_a_model_for_activations(saved):
    loaded = Trace.load(saved)
    assert loaded.capture is None and loaded.model is None
    with pytest.raises(InputError, match="trace the prompt again with a model"):
        loaded.layer_logits(0)
    with pytest.raises(InputError, match="trace again with a model"):
        loaded.plot_heads()
    with pytest.raises(InputError, match="no attention patterns"):
        loaded.plot_attention(0, 0)


def test_a_trace_without_capture_saves_and_loads(model, tmp_path):
    t = run_trace(model.lens_model, "Hello world", keep_capture=False)
    path = t.save(tmp_path / "n.lstrace.json")
    loaded = Trace.load(path)
    assert loaded.ids == t.ids
    assert loaded.save(tmp_path / "n2.lstrace.json").read_bytes() == path.read_bytes()


def test_a_future_version_is_refused_clearly(saved):
    rewrite(saved, lambda d: d.update(version=VERSION + 1))
    with pytest.raises(TraceFileError, match=r"newer layerscope \(version 2\); this one reads"):
        Trace.load(saved)


def _del(key):
    def edit(doc):
        del doc[key]

    return edit


def _set(path, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _drop_statistic(doc):
    doc["statistics"] = [s for s in doc["statistics"] if s["name"] != "entropy"]
    del doc["lens"]["entropy"]


def _shape(doc):
    doc["lens"]["final_prob"]["shape"][1] += 1


def _lens_size(doc):  # the data fit the shape, but the shape is not [layer, position]
    shape = doc["lens"]["final_prob"]["shape"]
    doc["lens"]["final_prob"]["shape"] = [shape[0] * shape[1]]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(["format"], "something-else"), "not a layerscope trace file: 'format' is"),
        (_del("format"), "not a layerscope trace file"),
        (_set(["version"], "one"), "'version' is 'one'"),
        (_del("tokens"), "'tokens' is missing"),
        (_set(["tokens"], [1, "two"]), "'tokens' must be a list of integers"),
        (_set(["n_prompt"], 0), "'n_prompt' is 0"),
        (_set(["model", "n_blocks"], 7), "model.n_lens_layers is"),
        (
            _set(["lens", "entropy", "data"], "@@not base64@@"),
            "lens.entropy: data is not valid base64",
        ),
        (_set(["lens", "entropy", "data"], "AAAA"), "lens.entropy: shape .* needs .* bytes"),
        (_shape, "lens.final_prob: shape .* needs"),
        (_lens_size, "lens.final_prob: shape .* does not match"),
        (_set(["lens", "top_ids", "dtype"], "float64"), "lens.top_ids: unknown dtype 'float64'"),
        (_drop_statistic, "statistics differ from this layerscope's declaration .*entropy"),
        (_del("statistics"), "'statistics' is missing"),
        (_set(["token_text"], {"0": "x"}), "'token_text' lacks the text"),
        (_set(["lock_in"], [0]), "'lock_in' does not match"),
        (
            _set(["extras"], {"attn": {"dtype": "float32", "shape": [2], "data": "AA=="}}),
            "extras.attn: shape",
        ),
    ],
)
def test_corrupt_files_give_a_clear_error(saved, edit, message):
    rewrite(saved, edit)
    with pytest.raises(TraceFileError, match=message) as info:
        Trace.load(saved)
    assert str(saved) in str(info.value)  # the message names the file
    assert isinstance(info.value, LayerscopeError)


def test_a_missing_lens_statistic_is_named(saved):
    rewrite(saved, lambda d: d["lens"].pop("kl_final"))
    with pytest.raises(TraceFileError, match=r"missing: \['kl_final'\]"):
        Trace.load(saved)


def test_truncated_and_non_json_files(saved, tmp_path):
    raw = saved.read_bytes()
    saved.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(TraceFileError, match="truncated one: invalid JSON at line 1"):
        Trace.load(saved)
    saved.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TraceFileError, match="not UTF-8"):
        Trace.load(saved)
    saved.write_text("[1, 2, 3]")
    with pytest.raises(TraceFileError, match="not a JSON object"):
        Trace.load(saved)
    with pytest.raises(TraceFileError, match="cannot read the trace file"):
        Trace.load(tmp_path / "nowhere.lstrace.json")
