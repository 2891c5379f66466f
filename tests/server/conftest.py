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
    from server.server_helpers import local_client

    with local_client(app) as c:  # the server answers only to its own names (not "testserver")
        yield c


@pytest.fixture
def live_url(app):
    """A real uvicorn serving ``app`` on a free loopback port: its host:port."""
    from server.server_helpers import Serving

    with Serving(app) as live:
        yield live.address
