"""Explorer benchmarks: end-to-end trace latency over the WebSocket and scrub latency in Chromium.

    python bench/bench_web.py [--tokens 128] [--moves 200] [--json out.json]

1. End to end (default model, CPU): one trace request of ``--tokens`` tokens in all (a short prompt
   plus generation) over a real WebSocket: wall time from request sent to last frame received,
   split into generation (the capture pass), lens, and transfer + overhead (the rest), plus the
   bytes of all frames.
2. Scrub latency: the same trace run from the page in headless Chromium, then ``--moves`` slider
   moves to random layers. For each: input event -> text repainted (the handler, the reactive
   updates and a forced style + layout of the tokens: the main thread's whole share of the frame),
   and input event -> next animation frame (adds the wait for vsync).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import threading
import time

PROMPT = "Once upon a time, in a small village by the sea,"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

SCRUB_JS = """async ([moves, seed]) => {
  const slider = document.getElementById('layer-slider');
  const tokens = document.getElementById('tokens');
  const n = +slider.max + 1;
  let s = seed;
  const rand = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const work = [], frame = [];
  for (let i = 0; i < moves; i++) {
    let l = Math.floor(rand() * n);
    if (l === +slider.value) l = (l + 1) % n;
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
    const t0 = performance.now();
    slider.value = l;
    slider.dispatchEvent(new Event('input'));
    await Promise.resolve();  // Alpine's reactive updates run as microtasks
    await Promise.resolve();
    tokens.getBoundingClientRect();  // flush style + layout of the repainted text
    const t1 = performance.now();
    await new Promise(r => requestAnimationFrame(r));
    frame.push(performance.now() - t0);
    work.push(t1 - t0);
    const shown = document.getElementById('layer-num').textContent;
    if (shown !== String(l)) throw new Error('no repaint');
  }
  return { work, frame };
}"""


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def _serve(model):
    import uvicorn

    from layerscope.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(model), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


async def _end_to_end(port: int, generate: int) -> dict:
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        hello = json.loads(await ws.recv())
        terminal = {"error", *hello["requests"]["trace"]["terminal"]}
        t0 = time.perf_counter()
        await ws.send(
            json.dumps({"type": "trace", "req": 1, "prompt": PROMPT, "generate": generate})
        )
        size, first_layer = 0, None
        while True:
            raw = await ws.recv()
            size += len(raw.encode())
            f = json.loads(raw)
            if f["type"] == "layer" and first_layer is None:
                first_layer = time.perf_counter() - t0
            if f["type"] in terminal:
                break
        wall = time.perf_counter() - t0
    if f["type"] == "error":
        raise SystemExit(f["message"])
    tm = f["timings"]
    return {
        "tokens": len(f["tokens"]),
        "wall_s": wall,
        "generation_s": tm.get("forward", 0.0),
        "lens_s": tm.get("lens", 0.0),
        "transfer_and_overhead_s": max(0.0, wall - tm.get("forward", 0.0) - tm.get("lens", 0.0)),
        "first_layer_frame_s": first_layer,
        "bytes": size,
        "trace_bytes_in_server": f["trace_bytes"],
    }


def _scrub(port: int, generate: int, moves: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#run:not([disabled])")
        page.fill("#prompt", PROMPT)
        page.fill("input[x-model\\.number='generate']", str(generate))
        page.click("#run")
        page.wait_for_function("window.layerscope?.store.current?.complete", timeout=600_000)
        n_tokens = page.evaluate("window.layerscope.store.current.T")
        page.wait_for_timeout(500)
        res = page.evaluate(SCRUB_JS, [moves, 12345])
        browser.close()
    out = {"tokens": n_tokens, "moves": moves}
    for key in ("work", "frame"):
        xs = res[key]
        out[f"{key}_median_ms"] = statistics.median(xs)
        out[f"{key}_p95_ms"] = _pct(xs, 0.95)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=128, help="tokens in the trace, prompt included")
    ap.add_argument("--moves", type=int, default=200)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    import layerscope

    model = layerscope.load(None, device="cpu")
    n_prompt = len(model.tokenizer.encode(PROMPT))
    generate = max(0, args.tokens - n_prompt)
    server, port = _serve(model)
    try:
        e2e = asyncio.run(_end_to_end(port, generate))
        print(f"end to end ({e2e['tokens']} tokens, {model.info.name}, CPU):")
        print(f"  request -> last frame   {e2e['wall_s']:8.2f} s")
        print(f"  generation (capture)    {e2e['generation_s']:8.2f} s")
        print(f"  lens                    {e2e['lens_s']:8.2f} s")
        print(f"  transfer + overhead     {e2e['transfer_and_overhead_s'] * 1000:8.0f} ms")
        print(f"  bytes sent              {e2e['bytes']:8d}  ({e2e['bytes'] / 1024:.0f} KiB)")
        scrub = _scrub(port, generate, args.moves)
        print(f"scrub latency in Chromium ({scrub['tokens']} tokens, {scrub['moves']} moves):")
        print(
            f"  input -> text repainted  median {scrub['work_median_ms']:.2f} ms, "
            f"p95 {scrub['work_p95_ms']:.2f} ms   (target < 16 ms)"
        )
        print(
            f"  input -> next frame      median {scrub['frame_median_ms']:.2f} ms, "
            f"p95 {scrub['frame_p95_ms']:.2f} ms   (includes the wait for vsync)"
        )
    finally:
        server.should_exit = True
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"end_to_end": e2e, "scrub": scrub}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
