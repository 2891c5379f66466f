"""The lens statistics are declared once; the JSON, the frames and the schema follow that list."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.engine.lens import Lens
from layerscope.engine.statistics import BY_NAME, NAMES, STATISTICS
from layerscope.engine.trace import run_trace
from tiny import tiny_model


def test_one_rounding_policy():
    probs = BY_NAME["top_probs"].to_json(np.array([[0.123456789, 1.0]], dtype=np.float32))
    assert probs == [[0.123457, 1.0]]
    assert BY_NAME["entropy"].to_json(np.array([2.7182818])) == [2.71828]
    assert BY_NAME["next_prob"].to_json(np.array([0.5, np.nan])) == [0.5, None]
    assert BY_NAME["next_rank"].to_json(np.array([3, -1], dtype=np.int32)) == [3, -1]
    for s in STATISTICS:
        assert s.decimals in (None, 5, 6) and (s.decimals is None) == (s.dtype == "int32")


def test_the_trace_json_and_the_lens_follow_the_declaration():
    tr = run_trace(tiny_model("llama"), ids=[5, 6, 7, 8], lens_top_k=3)
    assert list(tr.to_dict()["lens"]) == list(NAMES)
    assert list(tr.lens.arrays()) == list(NAMES)
    for s in STATISTICS:
        a = getattr(tr.lens, s.name)
        assert a.dtype == np.dtype(s.dtype) and a.ndim == (3 if s.per_k else 2), s.name


def test_a_lens_needs_exactly_the_declared_statistics():
    with pytest.raises(ValueError, match="exactly the statistics"):
        Lens(top_ids=np.zeros((1, 1, 1)))


def test_layer_frames_carry_one_field_per_statistic():
    from layerscope.server.handlers.trace import LayerFrame

    assert [f for f in LayerFrame.model_fields if f in NAMES] == list(NAMES)
