"""The request registry: a new request type is one declaration, and the whole protocol follows."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest

from layerscope.server.context import RequestContext
from layerscope.server.handlers import REGISTRY
from layerscope.server.registry import Registry
from layerscope.server.schemas import Frame, Request, Vocab


class EchoRequest(Request):
    """Throwaway: the ids of a prompt, streamed one frame per token."""

    type: Literal["echo"] = "echo"
    prompt: str


class EchoToken(Frame):
    type: Literal["echo_token"] = "echo_token"
    req: int
    id: int
    vocab: Vocab


class EchoDone(Frame):
    type: Literal["echo_done"] = "echo_done"
    req: int
    n: int


def echo(ctx: RequestContext, msg: EchoRequest) -> EchoDone:
    ids = ctx.encode(msg.prompt, False)
    for i in ids:
        ctx.emit(EchoToken(req=msg.req, id=i, vocab=ctx.vocab([i])))
    return EchoDone(req=msg.req, n=len(ids))


@pytest.fixture
def registry():
    reg = REGISTRY.copy()
    reg.request(EchoRequest, answers=EchoDone, streams=[EchoToken])(echo)
    return reg


@pytest.fixture
def app(tiny, registry):
    from layerscope.server import create_app

    return create_app(tiny, registry=registry)


def test_a_throwaway_request_type_works_over_a_real_websocket(live_url, tiny):
    from websockets.asyncio.client import connect

    async def main():
        async with connect(f"ws://{live_url}/ws") as ws:
            hello = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "echo", "req": 3, "prompt": "Hello world"}))
            frames = []
            terminal = set(hello["requests"]["echo"]["terminal"]) | {"error"}
            while not frames or frames[-1]["type"] not in terminal:
                frames.append(json.loads(await ws.recv()))
            return hello, frames

    hello, frames = asyncio.run(main())
    assert hello["requests"]["echo"] == {
        "streams": True,
        "frames": ["echo_token", "echo_done"],
        "terminal": ["echo_done"],
    }
    ids = tiny.tokenizer.encode("Hello world")
    assert [f["id"] for f in frames[:-1]] == ids
    assert frames[-1] == {"type": "echo_done", "req": 3, "n": len(ids)}


def test_the_schema_and_the_unions_come_from_the_registry(client, registry):
    import httpx  # noqa: F401 (TestClient needs it)

    schema = client.get("/api/protocol").json()
    assert set(schema["requests"]) == {t.type for t in REGISTRY} | {"echo"}
    assert "EchoRequest" in json.dumps(schema["client"]) and "EchoDone" in json.dumps(
        schema["server"]
    )
    registry.client_frame.validate_python({"type": "echo", "prompt": "x"})
    with pytest.raises(ValueError, match="twice"):
        registry.request(EchoRequest, answers=EchoDone)(echo)


def test_terminal_frames_must_be_declared_frames():
    from layerscope.server.registry import RequestType

    with pytest.raises(ValueError, match="terminal"):
        Registry([RequestType(EchoRequest, (EchoToken,), (EchoDone,), echo)])
