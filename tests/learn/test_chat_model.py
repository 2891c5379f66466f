"""The chat on the real default model and the packaged knowledge base (integration)."""

from __future__ import annotations

import re

import pytest

from layerscope.learn.chat import Delta, Done, Sources, answer
from layerscope.learn.generate import ModelGenerator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model():
    import layerscope

    return layerscope.load()  # module scope: the user cache, before the private one is set


@pytest.fixture(scope="module")
def real_index():
    from layerscope.learn.index import Index

    return Index.load_or_build()


def test_the_default_model_streams_a_cited_answer(model, real_index):
    gen = ModelGenerator(model, max_new_tokens=80)
    context = {"model": "smollm2-135m", "view": "heatmap", "layer": 14}
    events = list(answer("What does the logit lens show?", context, [], gen, index=real_index))
    assert isinstance(events[0], Sources)
    assert "logit-lens" in [s["doc"] for s in events[0].sources]
    deltas = [e for e in events if isinstance(e, Delta) and not e.replace]
    assert len(deltas) >= 5  # streamed token by token
    done = events[-1]
    print(f"\nmode={done.mode} note={done.note!r}\nstreamed={''.join(d.text for d in deltas)!r}")
    assert isinstance(done, Done) and done.mode in ("model", "extractive")
    if done.mode == "model":
        assert done.answer == "".join(d.text for d in deltas).strip()
    else:  # the grounding check turned the model's text down: it says why
        assert done.note
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", done.answer)}
    assert cited <= set(range(1, len(done.sources) + 1))
