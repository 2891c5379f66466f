"""Load test: N concurrent explorer users on one server, each level measured and checked.

Per request type: latency, throughput and errors; server memory over time; and that no result
reaches the wrong client.

    python bench/bench_load.py                              # 1, 5, 10, 20 clients, default model
    python bench/bench_load.py --clients 5 --sessions-per-client 2 --json load.json
    python bench/bench_load.py --quick                      # 1 and 2 clients, one session each
    python bench/bench_load.py --d32-shaped --clients 5,20  # nanochat d32 shapes, bf16, CUDA

The server runs in its own process on a free loopback port (the default model, or ``--model``;
``--d32-shaped``: random weights of nanochat-d32's shapes from ``bench_nanochat.py``, bf16 on
CUDA; ``--shaped d20 --device cpu`` tries the same path on a smaller shape) and is stopped at
the end (SIGINT, then a clean exit is checked). Nothing leaves loopback.

Each client (``load_clients.py``) opens one WebSocket and runs sessions like a person: trace a
prompt (5-30 tokens; half of them generate 8-16 more), per-head lens at two positions, cell top-k
of three cells, PCA of three positions, an ablation (``effect`` of one zeroed head) and a chat
question (``ask``), with 50-200 ms of seeded-random think time between interactions. A level ends
after ``--sessions-per-client`` sessions per client or ``--max-seconds``: no request starts after
it, those in flight finish or, ``--grace-seconds`` later, are given up ("unfinished", not an
error); the clients disconnect and the seconds until the worker is idle are reported. Before the
first level one client runs a warm-up session (the first ``ask`` loads or builds the
knowledge-base index; its time is reported apart). After the levels a disconnect probe leaves a
generating trace at its first token and times the worker moving on.

Latency is client side, from sending a request to its terminal frame; for ``trace`` also to its
first ``layer`` frame. Interaction requests (cell, heads, pca) are also reported for those sent
while another client's trace was in flight. Errors count by code (``busy`` apart). Server memory:
its RSS (and GPU memory on CUDA, from nvidia-smi) and ``/api/health`` every 0.5 s. ``--json``
also keeps every request (type, client, times, outcome). Exit status 1 if any frame reached the
wrong client or answered the wrong request, a client crashed, or the server did not stop cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
try:
    import layerscope  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(ROOT / "src"))

from load_clients import (  # noqa: E402
    INTERACTIVE,
    MODEL_JOBS,
    PROMPTS,
    Client,
    Record,
    Shared,
    overlapping,
)

TYPES = ("trace", "heads", "heads_tokens", "cell", "pca", "effect", "ask")
CONFIG_KEYS = ("clients", "sessions_per_client", "max_seconds", "model", "device", "shaped",
               "ask", "quick", "seed")  # fmt: skip


# ---------------------------------------------------------------------- the server process
def serve_child(a: argparse.Namespace) -> None:
    """Run in the server process: load the model as ``layerscope serve`` does, then serve it."""
    import uvicorn

    from layerscope.server import create_app

    if a.shaped:
        import torch

        from bench_nanochat import random_model

        model = random_model(a.shaped, torch.device(a.device or "cuda"))
    else:
        from layerscope.models.catalog import load

        model = load(a.model, device=a.device)
    if model.device.type == "cpu":  # what `layerscope serve` runs on CPU
        from layerscope.engine import fused

        fused.enable()
    uvicorn.run(create_app(model), host="127.0.0.1", port=a.port, log_level="warning")


def free_port() -> int:
    """A free loopback port in 8100-8199 (the range this project's shared machine uses)."""
    ports = list(range(8100, 8200))
    random.shuffle(ports)
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port in 8100-8199")


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Server:
    """The server as a child process: started, awaited on ``/api/health``, stopped by SIGINT."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        cmd = [sys.executable, __file__, "--serve-child", "--port", str(self.port)]
        if a.model:
            cmd += ["--model", a.model]
        if a.device:
            cmd += ["--device", a.device]
        if a.shaped:
            cmd += ["--shaped", a.shaped]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = t0 + a.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError, ValueError):
                self.health = get_json(self.base + "/api/health")
                break
            if time.perf_counter() > deadline:
                self.stop()
                raise SystemExit(f"the server did not answer in {a.startup_timeout:.0f} s")
            time.sleep(0.5)
        self.startup_s = time.perf_counter() - t0
        self.models = get_json(self.base + "/api/models")

    def tail(self, n: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-n:]

    def stop(self) -> dict:
        """SIGINT (uvicorn's graceful shutdown), then terminate / kill if it does not exit."""
        t0 = time.perf_counter()
        how = "sigint"
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            how = "terminate"
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                how = "kill"
                self.proc.kill()
                self.proc.wait()
        out = {
            "how": how,
            "returncode": self.proc.returncode,
            "seconds": round(time.perf_counter() - t0, 2),
            "log_tail": self.tail(1500),
        }
        self.log.close()
        return out


class Sampler(threading.Thread):
    """Every ``every`` seconds: the server's RSS, ``/api/health`` (and its latency), and on CUDA
    the process's GPU memory (nvidia-smi, every fourth sample)."""

    def __init__(self, server: Server, gpu: bool, every: float = 0.5) -> None:
        super().__init__(daemon=True, name="bench-load-sampler")
        import psutil

        self.process = psutil.Process(server.proc.pid)
        self.server = server
        self.gpu = gpu
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self.t0 = time.perf_counter()
        self._halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self._halt.is_set():
            t = time.perf_counter()
            s: dict[str, Any] = {"t": t, "rss_mb": None, "health_ms": None}
            with contextlib.suppress(Exception):
                s["rss_mb"] = self.process.memory_info().rss / 2**20
            with contextlib.suppress(OSError, ValueError):
                h = get_json(self.server.base + "/api/health")
                s["health_ms"] = (time.perf_counter() - t) * 1000
                s.update(pending=h["pending"], results=h["results"], result_bytes=h["result_bytes"])
            if self.gpu and n % 4 == 0:
                s["gpu_mb"] = gpu_memory_mb(self.process.pid)
            self.samples.append(s)
            n += 1
            self._halt.wait(max(0.0, self.every - (time.perf_counter() - t)))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def between(self, t0: float, t1: float) -> list[dict]:
        return [s for s in self.samples if t0 <= s["t"] <= t1]


def gpu_memory_mb(pid: int) -> float | None:
    """GPU memory the process holds, per nvidia-smi (None without it)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5,
        ).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        p, _, mb = line.partition(",")
        if p.strip() == str(pid):
            return float(mb)
    return None


# ---------------------------------------------------------------------- levels
async def run_level(
    ws_url: str, n_clients: int, level: int, a: argparse.Namespace
) -> tuple[Shared, float, float]:
    """N clients at once; returns what they recorded and the level's start and end times."""
    shared = Shared()
    t0 = time.perf_counter()
    deadline = t0 + a.max_seconds
    hard_stop = deadline + a.grace_seconds
    clients = [
        Client(
            i,
            ws_url,
            shared,
            seed=a.seed * 1000 + level * 100 + i,
            req_base=(level * 100 + i + 1) * 1_000_000,
            timeout=a.request_timeout,
            ask_mode=a.ask,
        )
        for i in range(n_clients)
    ]
    results = await asyncio.gather(
        *(c.run(a.sessions_per_client, deadline, hard_stop) for c in clients),
        return_exceptions=True,
    )
    for r in results:
        if isinstance(r, BaseException):
            shared.violations[f"client_failed:{type(r).__name__}"] += 1
    return shared, t0, time.perf_counter()


async def warm_up(ws_url: str, a: argparse.Namespace) -> dict:
    """One session from one client before timing: compiles, caches, the chat's index."""
    shared = Shared()
    client = Client(
        0, ws_url, shared, seed=a.seed, req_base=1, timeout=a.request_timeout, ask_mode=a.ask
    )
    t0 = time.perf_counter()
    await client.run(1, deadline=float("inf"))
    by_type: dict[str, list[float]] = {}
    for r in shared.records:
        by_type.setdefault(r.type, []).append(round(r.seconds * 1000, 1))
    errors = [f"{r.type}:{r.outcome}" for r in shared.records if r.outcome != "ok"]
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "ms": by_type,
        "errors": errors,
        "violations": dict(shared.violations),
        "note": "the first ask loads the knowledge-base index (builds it if not cached)",
    }


# ---------------------------------------------------------------------- figures
def pct(xs: list[float], q: float) -> float | None:
    """The q-quantile by linear interpolation (None for no data)."""
    if not xs:
        return None
    xs = sorted(xs)
    i = q * (len(xs) - 1)
    lo = int(i)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def latency(xs_s: list[float]) -> dict[str, Any]:
    ms = [1000 * x for x in xs_s]
    out: dict[str, Any] = {"n": len(ms)}
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99), ("max_ms", 1.0)):
        v = pct(ms, q)
        out[name] = None if v is None else round(v, 1)
    return out


def summarise(
    n_clients: int, shared: Shared, t0: float, t1: float, sampler: Sampler, load: list[float]
) -> dict:
    """All figures of one level."""
    wall = t1 - t0
    recs = shared.records
    per_type = {}
    for type_ in TYPES:
        rs = [r for r in recs if r.type == type_]
        ok = [r for r in rs if r.outcome == "ok"]
        codes = Counter(r.outcome for r in rs if r.outcome != "ok")
        row = {
            "count": len(rs),
            "ok": len(ok),
            **latency([r.seconds for r in ok]),
            "busy": codes.pop("busy", 0),
            "unfinished": codes.pop("unfinished", 0),
            "errors": dict(codes),
        }
        if type_ == "trace":
            row["first_layer"] = latency([r.first_layer for r in ok if r.first_layer is not None])
            row["bytes_per_trace"] = round(sum(r.bytes for r in ok) / max(1, len(ok)))
        per_type[type_] = row
    inter_ok = [r for r in recs if r.type in INTERACTIVE and r.outcome == "ok"]
    during_trace = overlapping(inter_ok, ("trace",), recs)
    during_model = overlapping(inter_ok, MODEL_JOBS, recs)
    alone = [r for r in inter_ok if r not in during_model]
    samples = sampler.between(t0, t1)
    ok_all = [r for r in recs if r.outcome == "ok"]
    return {
        "clients": n_clients,
        "wall_s": round(wall, 2),
        "sessions_completed": shared.sessions_done,
        "requests": per_type,
        "interactive": {
            "all": latency([r.seconds for r in inter_ok]),
            "during_other_trace": latency([r.seconds for r in during_trace]),
            "during_other_model_job": latency([r.seconds for r in during_model]),
            "no_other_model_job": latency([r.seconds for r in alone]),
            **{
                f"{t}_during_other_trace": latency([r.seconds for r in during_trace if r.type == t])
                for t in INTERACTIVE
            },
        },
        "throughput": {
            "requests_per_s": round(len(ok_all) / wall, 3),
            "traces_per_s": round(sum(r.type == "trace" for r in ok_all) / wall, 3),
            "sessions_per_min": round(60 * shared.sessions_done / wall, 2),
        },
        "errors_total": sum(r.outcome not in ("ok", "unfinished") for r in recs),
        "unfinished_total": sum(r.outcome == "unfinished" for r in recs),
        "busy_total": sum(r.outcome == "busy" for r in recs),
        "memory": memory(samples),
        "violations": dict(shared.violations),
        "load_average": {"start": load, "end": list(os.getloadavg())},
        "records": {
            "columns": ["type", "client", "sent_s", "seconds", "outcome", "first_layer_s"],
            "rows": [record_row(r, t0) for r in recs],
        },
    }


def record_row(r: Record, t0: float) -> list:
    """One request as a row of the JSON's ``records``: times from the level's start."""
    fl = None if r.first_layer is None else round(r.first_layer, 4)
    return [r.type, r.client, round(r.t0 - t0, 4), round(r.seconds, 4), r.outcome, fl]


def memory(samples: list[dict]) -> dict:
    """Start / peak / end of each sampled series, plus the series itself (time from level start)."""
    out: dict[str, Any] = {"samples": len(samples)}
    t_start = samples[0]["t"] if samples else 0.0
    for key in ("rss_mb", "gpu_mb", "result_bytes", "pending", "health_ms"):
        xs = [(s["t"], s[key]) for s in samples if s.get(key) is not None]
        if not xs:
            continue
        vals = [round(v, 1) for _, v in xs]
        out[key] = {"start": vals[0], "peak": max(vals), "end": vals[-1]}
        if key in ("rss_mb", "gpu_mb"):
            out[key]["series"] = [[round(t - t_start, 2), round(v, 1)] for t, v in xs]
    return out


# ---------------------------------------------------------------------- report
def fmt(v: float | None, spec: str = "{:.0f}") -> str:
    return "-" if v is None else spec.format(v)


def row(label: str, n: int, ok: str, lat: dict, busy: str = "", errors: str = "") -> str:
    cells = [fmt(lat[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
    return f"{label:<36}{n:>5}{ok:>5}" + "".join(f"{c:>9}" for c in cells) + f"{busy:>6}  {errors}"


def print_level(s: dict) -> None:
    """The level's table on stdout."""
    tp = s["throughput"]
    print(
        f"\n== {s['clients']} client(s): {s['sessions_completed']} sessions in {s['wall_s']:.1f} s;"
        f" {tp['requests_per_s']:.2f} requests/s, {tp['traces_per_s']:.2f} traces/s;"
        f" load average {s['load_average']['end'][0]:.1f}"
    )
    head = ("request", "n", "ok", "p50 ms", "p95 ms", "p99 ms", "max ms", "busy")
    print(f"{head[0]:<36}{head[1]:>5}{head[2]:>5}" + "".join(f"{h:>9}" for h in head[3:7])
          + f"{head[7]:>6}  errors")  # fmt: skip
    for type_, r in s["requests"].items():
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "-"
        if r["unfinished"]:
            errors += f" (unfinished at the level's end: {r['unfinished']})"
        print(row(type_, r["count"], str(r["ok"]), r, str(r["busy"]), errors))
        if type_ == "trace":
            print(row("  to first layer frame", r["first_layer"]["n"], "", r["first_layer"]))
    labels = {
        "all": "interactive (cell, heads, pca)",
        "during_other_trace": "  while another's trace runs",
        "during_other_model_job": "  while another's model job runs",
        "no_other_model_job": "  with no other model job",
        **{f"{t}_during_other_trace": f"  {t} while another's trace runs" for t in INTERACTIVE},
    }
    for key, label in labels.items():
        r = s["interactive"][key]
        print(row(label, r["n"], "", r))
    mem = s["memory"]
    rss, gpu = mem.get("rss_mb", {}), mem.get("gpu_mb")
    line = "server RSS start / peak / end: " + " / ".join(
        fmt(rss.get(k)) for k in ("start", "peak", "end")
    )
    if gpu:
        line += "; GPU " + " / ".join(fmt(gpu[k]) for k in ("start", "peak", "end"))
    health = mem.get("health_ms", {}).get("peak")
    print(f"{line} MB; /api/health answered within {fmt(health)} ms")
    print(f"worker idle {fmt(s['drain_s'], '{:.1f}')} s after the last client finished")
    v = s["violations"]
    print("violations: " + (", ".join(f"{k} {n}" for k, n in v.items()) if v else "none"))


async def drain(server: Server, limit: float = 600.0) -> float | None:
    """Seconds until the server's worker is idle with nothing queued (None: not within
    ``limit``): after a level, what clients left behind (e.g. given-up requests) still runs."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        with contextlib.suppress(OSError, ValueError):
            h = await asyncio.to_thread(get_json, server.base + "/api/health")
            if not h["busy"] and not h["pending"]:
                return round(time.perf_counter() - t0, 2)
        await asyncio.sleep(0.25)
    return None


async def main_async(a: argparse.Namespace, server: Server, sampler: Sampler) -> dict:
    ws_url = f"ws://127.0.0.1:{server.port}/ws"
    out: dict[str, Any] = {}
    if not a.no_warmup:
        out["warmup"] = await warm_up(ws_url, a)
        w = out["warmup"]
        times = ", ".join(f"{k} {'/'.join(f'{x:.0f}' for x in v)} ms" for k, v in w["ms"].items())
        print(f"warm-up session ({w['seconds']:.1f} s, not counted): {times}")
    out["levels"] = []
    for level, n in enumerate(a.clients):
        load = list(os.getloadavg())
        shared, t0, t1 = await run_level(ws_url, n, level, a)
        s = summarise(n, shared, t0, t1, sampler, load)
        s["drain_s"] = await drain(server)
        out["levels"].append(s)
        print_level(s)
    if a.disconnect_probe:
        p = out["disconnect"] = await disconnect_probe(ws_url, server, a.disconnect_probe)
        print(
            f"\ndisconnect mid-stream: a {p['tokens']}-token trace takes {p['full_s']:.1f} s; its "
            f"client left after {p['left_after_s']:.1f} s and the worker was idle "
            f"{fmt(p['idle_after_s'], '{:.1f}')} s later"
        )
    return out


async def disconnect_probe(ws_url: str, server: Server, generate: int) -> dict:
    """Does the worker move on when a client leaves mid-stream? The same trace, once read to its
    end, then once left (the connection closed) at its first generated token; then the seconds
    until the worker is idle."""
    from websockets.asyncio.client import connect

    msg = json.dumps({"type": "trace", "req": 1, "prompt": PROMPTS[0], "generate": generate})
    await drain(server)
    async with connect(ws_url, max_size=None) as ws:
        await ws.recv()  # hello
        t0 = time.perf_counter()
        await ws.send(msg)
        while (f := json.loads(await ws.recv()))["type"] not in ("done", "error"):
            pass
        full_s = time.perf_counter() - t0
        tokens = len(f.get("tokens", []))
    async with connect(ws_url, max_size=None) as ws:
        await ws.recv()
        t0 = time.perf_counter()
        await ws.send(msg)
        while json.loads(await ws.recv())["type"] not in ("token", "layer", "done", "error"):
            pass
        left_after_s = time.perf_counter() - t0
    return {
        "generate": generate,
        "tokens": tokens,
        "full_s": round(full_s, 2),
        "left_after_s": round(left_after_s, 2),
        "idle_after_s": await drain(server, limit=max(60.0, 3 * full_s)),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,5,10,20", help="levels: concurrent clients, e.g. 1,5")
    ap.add_argument("--sessions-per-client", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=180.0,
                    help="per level: no request starts after it")  # fmt: skip
    ap.add_argument("--grace-seconds", type=float, default=60.0,
                    help="give up requests unanswered this long after --max-seconds")  # fmt: skip
    ap.add_argument("--model", default=None, help="catalog name or directory (default model)")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: the loader's)")
    ap.add_argument("--d32-shaped", action="store_true",
                    help="nanochat-d32-shaped random weights (bf16 on CUDA)")  # fmt: skip
    ap.add_argument("--shaped", choices=("d32", "d20"), default=None,
                    help="nanochat-shaped random weights (default device: cuda)")  # fmt: skip
    ap.add_argument("--ask", choices=("model", "retrieve"), default=None,
                    help="chat answers written by the model (default), or retrieval only "
                    "(default with --quick)")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="1 and 2 clients, one session each")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--request-timeout", type=float, default=600.0)
    ap.add_argument("--startup-timeout", type=float, default=900.0)
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--disconnect-probe", type=int, default=48, metavar="TOKENS",
                    help="after the levels: leave a trace generating this many tokens at its "
                    "first token and time the worker moving on (0: skip)")  # fmt: skip
    ap.add_argument("--json", help="also write every figure here")
    ap.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.quick:
        a.clients, a.sessions_per_client = "1,2", 1
        a.ask = a.ask or "retrieve"
    a.ask = a.ask or "model"
    if a.d32_shaped:
        a.shaped = "d32"
    a.clients = [int(x) for x in str(a.clients).split(",") if x]
    if not a.clients or min(a.clients) < 1 or max(a.clients) > 99:
        ap.error("--clients: numbers from 1 to 99")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.serve_child:
        serve_child(a)
        return 0
    server = Server(a)
    loaded = server.models["loaded"]
    print(f"server: {loaded['name']} ({loaded['n_blocks']} blocks, {loaded['n_heads']} heads, "
          f"d={loaded['d_model']}) at {server.base}, ready in {server.startup_s:.1f} s; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    device = (a.device or "cuda") if a.shaped else (a.device or "")
    sampler = Sampler(server, gpu=device.startswith("cuda"))
    sampler.start()
    try:
        result = asyncio.run(main_async(a, server, sampler))
    finally:
        try:
            sampler.stop()
        finally:
            stopped = server.stop()
    print(f"\nserver stopped by {stopped['how']} in {stopped['seconds']:.1f} s "
          f"(exit code {stopped['returncode']})")  # fmt: skip
    if a.json:
        doc = {
            "config": {k: getattr(a, k) for k in CONFIG_KEYS},
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "server": {"model": loaded, "startup_s": round(server.startup_s, 2), "stop": stopped},
            **result,
        }
        Path(a.json).write_text(json.dumps(doc, indent=1))
    bad = sum(v for s in result["levels"] for k, v in s["violations"].items() if k != "late_frame")
    return 1 if bad or stopped["how"] != "sigint" else 0


if __name__ == "__main__":
    sys.exit(main())
