"""An open WebSocket (hello already read) for the handler tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def ws(client):
    with client.websocket_connect("/ws") as sock:
        sock.receive_json()
        yield sock
