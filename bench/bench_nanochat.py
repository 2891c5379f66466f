"""Trace speed and memory of nanochat-shaped models with random weights (no checkpoint needed).

    python bench/bench_nanochat.py                      # d32 + d20, CPU 128 tokens; CUDA 128/512
    python bench/bench_nanochat.py --models d20 --devices cpu --tokens 128 --repeats 3

One full trace = prefill with attentions + (L+1)-layer chunked lens + top-k + ``trace.to_dict()``
+ ``json.dumps``. Each (model, device) case runs in its own process so peak memory is its own.
Weights have the real checkpoint's shapes and dtypes (wte generated in bf16, the rest fp32), then
placed as the loader does: fp32 on CPU, bf16 on CUDA.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
try:
    import layerscope  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(ROOT / "src"))

SHAPES = {
    "d32": {"n_layer": 32, "n_embd": 2048, "n_head": 16},
    "d20": {"n_layer": 20, "n_embd": 1280, "n_head": 10},
}
VOCAB = 65536


def synthetic_encoding():
    """A 65,536-token tiktoken Encoding: 256 bytes, two-byte merges, nanochat's 9 specials last."""
    import tiktoken

    from layerscope.models.nanochat.tokenizer import SPECIAL_TOKENS, SPLIT_PATTERN

    ranks = {bytes([i]): i for i in range(256)}
    n_merges = VOCAB - 256 - len(SPECIAL_TOKENS)
    for i in range(n_merges):
        ranks[bytes([32 + i % 224, 32 + (i // 224) % 224]) + bytes(i // (224 * 224))] = 256 + i
    special = {t: VOCAB - len(SPECIAL_TOKENS) + i for i, t in enumerate(SPECIAL_TOKENS)}
    return tiktoken.Encoding(
        name="rustbpe", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens=special
    )


def random_model(shape: str, device: torch.device):
    """A NanochatLM of the given shape with random weights, placed like ``load_nanochat``."""
    from layerscope.models.device import dtype_for
    from layerscope.models.nanochat import NanochatConfig, NanochatLM, NanochatTokenizer
    from layerscope.models.nanochat.load import build_module

    s = SHAPES[shape]
    conf = NanochatConfig(
        n_layer=s["n_layer"],
        n_head=s["n_head"],
        n_kv_head=s["n_head"],
        n_embd=s["n_embd"],
        vocab_size=VOCAB,
        sequence_len=2048,
    )
    dtype = dtype_for(device)
    g = torch.Generator(device=device).manual_seed(0)
    # real files: wte bf16, the rest fp32; on CUDA generate straight in bf16 to save time/memory
    store = torch.float32 if device.type == "cpu" else dtype

    def rand(*size: int, std: float, dt: torch.dtype = store) -> torch.Tensor:
        return torch.empty(size, dtype=dt, device=device).normal_(0.0, std, generator=g)

    d, sd = conf.n_embd, {}
    sd["transformer.wte.weight"] = rand(VOCAB, d, std=1.0, dt=torch.bfloat16)
    for i in range(conf.n_layer):
        p = f"transformer.h.{i}."
        for name in ("c_q", "c_k", "c_v", "c_proj"):
            sd[p + f"attn.{name}.weight"] = rand(d, d, std=d**-0.5)
        sd[p + "mlp.c_fc.weight"] = rand(4 * d, d, std=d**-0.5)
        sd[p + "mlp.c_proj.weight"] = rand(d, 4 * d, std=(4 * d) ** -0.5)
    sd["lm_head.weight"] = rand(VOCAB, d, std=d**-0.5)
    module = build_module(conf, sd, device, dtype)
    del sd
    tok = NanochatTokenizer(synthetic_encoding())
    return NanochatLM(module, tok, name=f"nanochat-{shape}-random")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def run_case(shape: str, device_name: str, tokens: list[int], repeats: int) -> list[dict]:
    """Build one model, then time full traces at each length (first run is a warm-up)."""
    from layerscope.engine.trace import run_trace

    device = torch.device(device_name)
    t0 = time.perf_counter()
    model = random_model(shape, device)
    sync(device)
    build_s = time.perf_counter() - t0
    rss_model = rss_gb()
    gen = torch.Generator().manual_seed(1)
    rows = []
    for n in tokens:
        ids = [model.tokenizer.bos_id, *torch.randint(0, VOCAB - 9, (n - 1,), generator=gen)]
        ids = [int(i) for i in ids]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, parts, ser = [], [], []
        for r in range(repeats + 1):
            sync(device)
            t = time.perf_counter()
            trace = run_trace(model, ids=ids, attention=True, keep_capture=False)
            sync(device)
            t_ser = time.perf_counter()
            text = json.dumps(trace.to_dict())
            if r:  # r == 0 is the warm-up
                times.append(time.perf_counter() - t)
                ser.append(time.perf_counter() - t_ser)
                parts.append(trace.timings)
        rows.append(
            {
                "model": shape,
                "device": device_name,
                "dtype": str(model.dtype).removeprefix("torch."),
                "tokens": n,
                "lens_layers": model.info.n_lens_layers,
                "params_b": model.info.n_params / 1e9,
                "build_s": build_s,
                "trace_ms": 1000 * statistics.median(times),
                "forward_ms": 1000 * statistics.median(p["forward"] for p in parts),
                "lens_ms": 1000 * statistics.median(p["lens"] for p in parts),
                "serialise_ms": 1000 * statistics.median(ser),
                "json_mb": len(text) / 2**20,
                "rss_model_gb": rss_model,
                "rss_peak_gb": rss_gb(),
                "gpu_peak_gb": (
                    torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
                ),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="d32,d20")
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--tokens", default=None, help="default: 128 on CPU, 128,512 on CUDA")
    ap.add_argument("--repeats", type=int, default=None, help="default: 2 on CPU, 10 on CUDA")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.child:
        rows = run_case(a.models, a.devices, [int(t) for t in a.tokens.split(",")], a.repeats)
        print("RESULT " + json.dumps(rows))
        return
    rows: list[dict] = []
    for dev in a.devices.split(","):
        if dev == "cuda" and not torch.cuda.is_available():
            print("cuda: not available, skipped", file=sys.stderr)
            continue
        tokens = a.tokens or ("128" if dev == "cpu" else "128,512")
        repeats = a.repeats or (2 if dev == "cpu" else 10)
        for shape in a.models.split(","):
            cmd = [sys.executable, __file__, "--child", "--models", shape, "--devices", dev,
                   "--tokens", tokens, "--repeats", str(repeats)]  # fmt: skip
            if a.threads:
                cmd += ["--threads", str(a.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{shape} on {dev} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows += json.loads(line[len("RESULT ") :])
            print_table(rows[-len(tokens.split(",")) :], header=len(rows) == len(tokens.split(",")))
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} CPU threads")


def print_table(rows: list[dict], header: bool) -> None:
    cols = [("model", "{}"), ("device", "{}"), ("dtype", "{}"), ("tokens", "{}"),
            ("lens_layers", "{}"), ("params_b", "{:.2f}"), ("trace_ms", "{:.0f}"),
            ("forward_ms", "{:.0f}"), ("lens_ms", "{:.0f}"), ("serialise_ms", "{:.0f}"),
            ("json_mb", "{:.2f}"), ("rss_peak_gb", "{:.2f}"), ("gpu_peak_gb", "{:.2f}"),
    ]  # fmt: skip
    if header:
        print(" | ".join(name for name, _ in cols))
    for r in rows:
        print(" | ".join("-" if r[n] is None else f.format(r[n]) for n, f in cols), flush=True)


if __name__ == "__main__":
    main()
