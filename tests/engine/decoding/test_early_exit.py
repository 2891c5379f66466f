"""Early-exit decoding: the lens at one layer, read with a KV cache, on every family."""

from __future__ import annotations

import pytest

from layerscope.engine.capture import capture
from layerscope.engine.decoding.early_exit import early_exit_generate
from layerscope.engine.trace import run_trace
from layerscope.errors import InputError
from tiny import FAMILIES, tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def ids(model):
    return model.tokenizer.encode("The capital of France is")


def test_early_exit_at_the_last_layer_is_greedy_generation(model, ids):
    full = early_exit_generate(model, ids, model.info.n_blocks, 5)
    tr = run_trace(model, ids=ids, generate=5, attention=False)
    assert full == tr.ids[len(ids) :][: len(full)]
    early = early_exit_generate(model, ids, 1, 5)
    assert len(early) == 5
    # the first early token is the layer-1 lens argmax at the last prompt position
    assert early[0] == int(tr.lens.top_ids[1, len(ids) - 1, 0])
    with pytest.raises(InputError):
        early_exit_generate(model, ids, 99, 2)


def _reference(model, ids, layer, n):
    """Early exit the slow way: the whole sequence again for every token, read at ``layer``."""
    seq, out = list(ids), []
    for _ in range(n):
        h = capture(model, seq, attention=False).resid[layer, -1]
        tok = int(model.unembed(model.final_norm(h[None]))[0].argmax())
        out.append(tok)
        seq.append(tok)
    return out


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("layer", [0, 1])
def test_cached_early_exit_equals_rereading_the_whole_sequence(family, layer):
    m = tiny_model(family)
    ids = m.tokenizer.encode("Once upon a time there was")
    assert early_exit_generate(m, ids, layer, 6) == _reference(m, ids, layer, 6)
