"""A full trace streamed over a real WebSocket from uvicorn on a loopback port."""

from __future__ import annotations

import asyncio
import json


def test_stream_a_full_trace_over_a_real_websocket(live_url, tiny):
    import httpx
    from websockets.asyncio.client import connect

    async def main():
        async with connect(f"ws://{live_url}/ws?session=test-session-1") as ws:
            hello = json.loads(await ws.recv())
            assert hello["session"] == "test-session-1"
            await ws.send(
                json.dumps({"type": "trace", "req": 1, "prompt": "Hello world", "generate": 4})
            )
            frames, size = [], 0
            while True:
                raw = await ws.recv()
                f = json.loads(raw)
                frames.append(f)
                if f["type"] in ("done", "error"):
                    break
                size += len(raw.encode())
            return frames, size

    frames, size = asyncio.run(main())
    done = frames[-1]
    assert done["type"] == "done", done
    assert done["bytes_sent"] == size
    layers = [f["layer"] for f in frames if f["type"] == "layer"]
    assert sorted(layers) == list(range(tiny.info.n_lens_layers))
    assert layers[0] == tiny.info.n_blocks  # the final layer first: others are compared with it
    r = httpx.get(f"http://{live_url}/api/traces/{done['trace_id']}")
    assert r.status_code == 200 and [t["id"] for t in r.json()["tokens"]] == done["tokens"]
