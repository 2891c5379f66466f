"""A tiny llama and one captured pass, shared by the analysis tests."""

from __future__ import annotations

import pytest

from layerscope.engine.capture import capture


@pytest.fixture(scope="module")
def model():
    from tiny import tiny_model

    return tiny_model("llama")


@pytest.fixture(scope="module")
def cap(model):
    return capture(model, model.tokenizer.encode("The capital of France is Paris."))
