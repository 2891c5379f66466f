"""A tiny random-weight model behind the real app; requests never leave this machine."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny():
    from tiny import tiny_model

    return tiny_model("llama")


@pytest.fixture
def app(tiny):
    from layerscope.server import create_app

    return create_app(tiny)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c
