"""Logit-lens trace of smollm2-135m on CPU against the same lens computed by peers.

    python bench/bench_trace.py                  # readable table
    python bench/bench_trace.py --json out.json  # the same figures as JSON
    python bench/bench_trace.py --tokens 128 --repeats 5 --peers hf,transformer_lens,nnsight

One full trace = prefill of T tokens + a lens over all L+1 layers and T positions: top-10 ids and
probabilities, rank and probability of the final layer's argmax and of the next token, entropy
and KL(final ‖ layer). The peers compute exactly these statistics from the same model:
- ``hf``: ``output_hidden_states=True``, the final norm on hidden_states[0..L-1] (hidden_states[L]
  already has it), lm_head on every layer, then plain torch ops one layer at a time;
- ``transformer_lens``: a TransformerBridge (TransformerLens >= 4; ``HookedTransformer`` is gone)
  over a copy of the loaded HF model, ``run_with_cache`` on the residual hooks, then
  ``ln_final`` + ``unembed`` per layer and the same statistics;
- ``nnsight``: ``LanguageModel(hf_model, tokenizer=...)``; inside one trace every layer's output
  goes through ``model.norm`` and ``lm_head`` and is saved; then the same statistics.
Every peer's top-1 is checked against layerscope's in every (layer, position) cell.

Timing: all methods run in this one process, interleaved round by round after a warm-up round;
the table shows medians (and minima). The machine's fp32 matmul throughput (one 4096x576 @
576x49152 sgemm, the lens's own shape) is timed up front and once in every round, and layerscope's
time is reported as a multiple of the FLOP floor (2 · params · T for the forward +
(L+1) · T · d · V · 2 for the lens) at the best rate seen (and at the median rate).

Memory: each method also runs in a child process of its own (model loaded, one warm-up run),
which then resets its resident-set high-water mark (``/proc/self/clear_refs``) and reports the
peak RSS (VmHWM) over one more run: the figure includes the model and everything the process
holds, not only the lens. Peers need ``pip install transformer-lens nnsight`` (the ``bench``
extra); a missing one is reported and skipped. No network is used (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

ROOT = Path(__file__).resolve().parents[1]
try:
    import layerscope
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(ROOT / "src"))
    import layerscope
from layerscope.engine import fused  # noqa: E402  (after the path fallback)

TEXT = (
    "The logit lens reads the residual stream of a transformer after every layer through the "
    "model's own final norm and unembedding. Early layers often predict generic tokens such as "
    "punctuation or common words; the middle layers begin to agree with the final answer, and "
    "the last few layers sharpen it. Paris is the capital of France, Rome is the capital of "
    "Italy, and Madrid is the capital of Spain. "
)
K = 10
TL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
PEERS = ("hf", "transformer_lens", "nnsight")
TARGET_PEER_SPEEDUP = 2.5
TARGET_FLOOR_MULTIPLE = 1.5
TARGET_PEAK_GB = 1.5
GEMM_SHAPE = (4096, 576, 49152)  # rows x d x vocab, the lens's own shape


# ---------------------------------------------------------------------------------------------
# The lens computed the plain way, shared by every peer: full logits of one layer at a time.
# ---------------------------------------------------------------------------------------------
def plain_lens(
    layer_logits: Callable[[int], torch.Tensor], n_lens: int, ids: list[int], k: int = K
) -> dict[str, torch.Tensor]:
    """Lens statistics from ``layer_logits(l)`` -> [T, V] float logits, with plain torch ops."""
    nxt = torch.tensor(ids[1:])
    zf = layer_logits(n_lens - 1).float()
    logp_f = torch.log_softmax(zf, dim=-1)
    p_f = logp_f.exp()
    final_id = zf.argmax(dim=-1)
    out: dict[str, list[torch.Tensor]] = {}
    for layer in range(n_lens):
        z = zf if layer == n_lens - 1 else layer_logits(layer).float()
        logp = torch.log_softmax(z, dim=-1)
        p = logp.exp()
        top_ids = z.topk(k, dim=-1).indices
        z_final = z.gather(-1, final_id[:, None])
        z_next = z[:-1].gather(-1, nxt[:, None])
        stats = {
            "top_ids": top_ids,
            "top_probs": p.gather(-1, top_ids),
            "final_rank": (z > z_final).sum(-1) + 1,
            "final_prob": p.gather(-1, final_id[:, None])[:, 0],
            "next_rank": torch.cat([(z[:-1] > z_next).sum(-1) + 1, torch.tensor([-1])]),
            "next_prob": torch.cat([p[:-1].gather(-1, nxt[:, None])[:, 0], torch.tensor([0.0])]),
            "entropy": -(p * logp).sum(-1),
            "kl_final": (p_f * (logp_f - logp)).sum(-1),
        }
        for key, v in stats.items():
            out.setdefault(key, []).append(v)
    return {key: torch.stack(v) for key, v in out.items()}


class Method:
    """One way of computing the lens: ``run(ids)`` -> top-1 ids [L+1, T] (a tensor)."""

    label = ""

    def run(self, ids: list[int]) -> torch.Tensor:
        raise NotImplementedError


class LayerscopeMethod(Method):
    def __init__(self, model: Any, attention: bool, compiled: bool = False) -> None:
        self.model = model
        self.attention = attention
        self.compiled = compiled
        kind = "compiled fused lens, as served" if compiled else f"attention={attention}"
        self.label = f"layerscope ({kind})"
        self.timings: list[dict[str, float]] = []
        if compiled and not fused.enable():
            raise RuntimeError("the fused lens kernel could not be compiled")
        fused.disable()

    def run(self, ids: list[int]) -> torch.Tensor:
        if self.compiled:
            fused.enable()  # instant once built; the other rows run eager
        try:
            trace = self.model.trace(
                ids=ids, lens_top_k=K, attention=self.attention, keep_capture=False
            )
        finally:
            fused.disable()
        self.timings.append(dict(trace.timings))
        return torch.from_numpy(trace.lens.top_ids[:, :, 0].astype("int64"))


class HFPlainMethod(Method):
    label = "HF plain (output_hidden_states)"

    def __init__(self, hf: Any) -> None:
        self.hf = hf

    def run(self, ids: list[int]) -> torch.Tensor:
        hf = self.hf
        with torch.inference_mode():
            out = hf(input_ids=torch.tensor([ids]), output_hidden_states=True)
            hs = out.hidden_states  # L+1 entries; the last already went through the final norm
            n = len(hs)

            def logits(layer: int) -> torch.Tensor:
                h = hs[layer][0]
                return hf.lm_head(h if layer == n - 1 else hf.model.norm(h))

            return plain_lens(logits, n, ids)["top_ids"][:, :, 0]


class TransformerLensMethod(Method):
    label = "TransformerLens (TransformerBridge)"

    def __init__(self, hf: Any, tokenizer: Any) -> None:
        from transformer_lens.model_bridge import TransformerBridge

        self.bridge = TransformerBridge.boot_transformers(
            TL_NAME, hf_model=hf, tokenizer=tokenizer, device="cpu", dtype=torch.float32
        )
        self.n_blocks = self.bridge.cfg.n_layers
        names = ["blocks.0.hook_resid_pre"]
        names += [f"blocks.{i}.hook_resid_post" for i in range(self.n_blocks)]
        self.names = names

    def run(self, ids: list[int]) -> torch.Tensor:
        br = self.bridge
        with torch.inference_mode():
            _, cache = br.run_with_cache(torch.tensor([ids]), names_filter=self.names)
            resid = [cache[name][0] for name in self.names]

            def logits(layer: int) -> torch.Tensor:
                return br.unembed(br.ln_final(resid[layer]))

            return plain_lens(logits, len(resid), ids)["top_ids"][:, :, 0]


class NNsightMethod(Method):
    label = "nnsight (LanguageModel)"

    def __init__(self, hf: Any, tokenizer: Any) -> None:
        import warnings

        from nnsight import LanguageModel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LanguageModel's deprecation notice
            self.lm = LanguageModel(hf, tokenizer=tokenizer)
        self.n_blocks = len(hf.model.layers)

    def run(self, ids: list[int]) -> torch.Tensor:
        lm = self.lm
        saved: list[Any] = []
        with torch.inference_mode(), lm.trace(torch.tensor([ids])):
            saved.append(lm.lm_head(lm.model.norm(lm.model.layers[0].input)).save())
            for i in range(self.n_blocks):
                saved.append(lm.lm_head(lm.model.norm(lm.model.layers[i].output)).save())
        with torch.inference_mode():
            return plain_lens(lambda layer: saved[layer][0], len(saved), ids)["top_ids"][:, :, 0]


# ---------------------------------------------------------------------------------------------
def load_model() -> Any:
    return layerscope.load("smollm2-135m", device="cpu")


def bench_ids(model: Any, n: int) -> list[int]:
    """Exactly ``n`` token ids of English text (the tokenizer's own encoding, BOS if any)."""
    ids = model.tokenizer.encode(TEXT * (1 + n // 40))
    if len(ids) < n:
        raise SystemExit(f"the bench text is only {len(ids)} tokens")
    return ids[:n]


def make_method(name: str, model: Any) -> Method:
    """A method by name; peers get their own copy of the HF model (TransformerLens switches
    its copy to eager attention, which must not leak into the others)."""
    if name == "layerscope":
        return LayerscopeMethod(model, attention=False)
    if name == "layerscope_attn":
        return LayerscopeMethod(load_model(), attention=True)
    if name == "layerscope_compiled":
        return LayerscopeMethod(model, attention=False, compiled=True)
    hf = copy.deepcopy(model.hf).eval()
    tok = model.tokenizer._tok
    if name == "hf":
        return HFPlainMethod(hf)
    if name == "transformer_lens":
        return TransformerLensMethod(hf, tok)
    if name == "nnsight":
        return NNsightMethod(hf, tok)
    raise ValueError(name)


class Gemm:
    """One big fp32 sgemm of the lens's own shape, timed once per round like the methods."""

    def __init__(self) -> None:
        m, d, v = GEMM_SHAPE
        gen = torch.Generator().manual_seed(0)
        self.a = torch.randn(m, d, generator=gen)
        self.b = torch.randn(v, d, generator=gen)
        self.out = torch.empty(m, v)
        self.flops = 2.0 * m * d * v

    def run(self) -> float:
        t0 = time.perf_counter()
        torch.mm(self.a, self.b.t(), out=self.out)
        return time.perf_counter() - t0

    def summary(self, times: list[float]) -> dict[str, Any]:
        m, d, v = GEMM_SHAPE
        return {
            "shape": f"{m}x{d} @ {d}x{v}",
            "times_s": times,
            "median_s": statistics.median(times),
            "min_s": min(times),
            "gflops_median": self.flops / statistics.median(times) / 1e9,
            "gflops_best": self.flops / min(times) / 1e9,
        }


def disagreement_gaps(
    model: Any, ids: list[int], ref: torch.Tensor, top1: dict[str, torch.Tensor]
) -> dict[str, list[dict[str, Any]]]:
    """For every cell where a method's top-1 differs from layerscope's: the two ids and the gap
    between their logits (layerscope's full logits of that layer), to tell near-ties from bugs."""
    out: dict[str, list[dict[str, Any]]] = {}
    trace = None
    for name, t1 in top1.items():
        for layer, pos in (t1 != ref).nonzero().tolist():
            if trace is None:
                trace = model.trace(ids=ids, lens_top_k=K, attention=False, keep_capture=True)
            z = trace.layer_logits(layer)[pos]
            a, b = int(ref[layer, pos]), int(t1[layer, pos])
            gap = float(z[a] - z[b])
            out.setdefault(name, []).append({"layer": layer, "pos": pos, "ids": [a, b], "gap": gap})
    return out


def flop_floor(model: Any, n_tok: int) -> dict[str, float]:
    info = model.info
    forward = 2.0 * info.n_params * n_tok
    lens = info.n_lens_layers * n_tok * info.d_model * info.vocab_size * 2.0
    return {
        "forward_gflop": forward / 1e9,
        "lens_gflop": lens / 1e9,
        "total_gflop": (forward + lens) / 1e9,
    }


def rss_status() -> dict[str, float]:
    """VmRSS and VmHWM of this process in GB (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024 / 1e9
    return out


def child_memory(name: str, n_tok: int) -> None:
    """Run one method in this (child) process and print its peak RSS as one JSON line."""
    model = load_model()
    ids = bench_ids(model, n_tok)
    method = make_method(name, model)
    method.run(ids)  # warm-up: lazily built state and allocator pools count as steady state
    after_setup = rss_status()
    reset = False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        pass
    method.run(ids)
    status = rss_status()
    print(
        json.dumps(
            {
                "method": name,
                "rss_after_setup_gb": after_setup["VmRSS"],
                "peak_rss_gb": status["VmHWM"],
                "peak_covers_run_only": reset,
            }
        )
    )


def memory_of(name: str, n_tok: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--tokens", str(n_tok)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"method": name, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1])


def available_peers(wanted: list[str]) -> tuple[list[str], dict[str, str]]:
    import importlib.util

    modules = {"hf": "transformers", "transformer_lens": "transformer_lens", "nnsight": "nnsight"}
    ok, skipped = [], {}
    for name in wanted:
        if importlib.util.find_spec(modules[name]) is None:
            skipped[name] = f"not installed (pip install {modules[name].replace('_', '-')})"
        else:
            ok.append(name)
    return ok, skipped


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    load_start = os.getloadavg()
    model = load_model()
    ids = bench_ids(model, args.tokens)
    wanted = [p for p in args.peers.split(",") if p]
    peers, skipped = available_peers(wanted)
    names = ["layerscope", "layerscope_compiled", *peers]
    if not args.no_attention:
        names.insert(1, "layerscope_attn")
    methods: dict[str, Method] = {}
    for name in names:
        try:
            methods[name] = make_method(name, model)
        except Exception as exc:  # a peer that cannot be built is reported, not fatal
            skipped[name] = f"{type(exc).__name__}: {exc}"
    gemm = Gemm()
    gemm.run()  # warm-up
    gemm_times = [gemm.run() for _ in range(args.gemm_repeats)]

    # Warm-up round, which also gives the top-1 of every cell for the agreement check.
    top1 = {name: m.run(ids) for name, m in methods.items()}
    for m in methods.values():
        if isinstance(m, LayerscopeMethod):
            m.timings.clear()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        gemm_times.append(gemm.run())  # the same conditions as this round's methods
        for name, m in methods.items():
            t0 = time.perf_counter()
            m.run(ids)
            times[name].append(time.perf_counter() - t0)

    ref_top1 = top1["layerscope"]
    gaps = disagreement_gaps(model, ids, ref_top1, top1)
    floor = flop_floor(model, len(ids))
    g = gemm.summary(gemm_times)
    # The floor is taken at the best sgemm rate seen (what the machine can do), the strict
    # choice on a shared machine; the median rate is reported beside it.
    floor_s = floor["total_gflop"] / g["gflops_best"]
    floor_median_s = floor["total_gflop"] / g["gflops_median"]
    ref = top1["layerscope"]
    base = statistics.median(times["layerscope"])
    rows = []
    for name, m in methods.items():
        med = statistics.median(times[name])
        row: dict[str, Any] = {
            "method": name,
            "label": m.label,
            "median_s": med,
            "min_s": min(times[name]),
            "times_s": times[name],
            "x_flop_floor": med / floor_s,
            "x_flop_floor_at_median_rate": med / floor_median_s,
            "vs_layerscope": med / base,
            "top1_agree_pct": 100.0 * float((top1[name] == ref).float().mean()),
            "top1_disagree_cells": int((top1[name] != ref).sum()),
            "top1_disagree_logit_gaps": gaps.get(name, []),
        }
        if isinstance(m, LayerscopeMethod):
            row["forward_median_s"] = statistics.median(t["forward"] for t in m.timings)
            row["lens_median_s"] = statistics.median(t["lens"] for t in m.timings)
        rows.append(row)
    memory = {}
    if not args.no_memory:
        for name in methods:
            memory[name] = memory_of(name, len(ids))
    return {
        "model": model.info.name,
        "tokens": len(ids),
        "lens_layers": model.info.n_lens_layers,
        "d_model": model.info.d_model,
        "vocab": model.info.vocab_size,
        "n_params": model.info.n_params,
        "lens_top_k": K,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "gemm": g,
        "flop_floor": {**floor, "seconds": floor_s, "seconds_at_median_rate": floor_median_s},
        "rows": rows,
        "memory": memory,
        "skipped": skipped,
    }


def verdicts(res: dict[str, Any]) -> list[str]:
    rows = {r["method"]: r for r in res["rows"]}
    out = []
    for variant in ("layerscope", "layerscope_compiled"):
        if variant in rows:
            out.append(f"{rows[variant]['label']}:")
            out += ["  " + line for line in _verdicts(res, rows, variant)]
    return out


def _verdicts(res: dict[str, Any], rows: dict[str, Any], variant: str) -> list[str]:
    ls = rows[variant]
    out = []
    for name in PEERS:
        if name in rows:
            speedup = rows[name]["median_s"] / ls["median_s"]
            ok = speedup >= TARGET_PEER_SPEEDUP
            out.append(
                f"{'MET ' if ok else 'MISS'}  {speedup:.2f}x faster than {name} "
                f"(target >= {TARGET_PEER_SPEEDUP}x)"
            )
        elif name in res["skipped"]:
            out.append(f"n/a   {name}: {res['skipped'][name]}")
    mult = ls["x_flop_floor"]
    ok = mult <= TARGET_FLOOR_MULTIPLE
    out.append(
        f"{'MET ' if ok else 'MISS'}  {mult:.2f}x the FLOP floor at the best sgemm rate "
        f"(target <= 1.5x)"
    )
    mem = res["memory"].get(variant, {})
    if "peak_rss_gb" in mem:
        ok = mem["peak_rss_gb"] < TARGET_PEAK_GB
        out.append(
            f"{'MET ' if ok else 'MISS'}  peak RSS {mem['peak_rss_gb']:.2f} GB (target < 1.5 GB)"
        )
    return out


def print_table(res: dict[str, Any]) -> None:
    g, f = res["gemm"], res["flop_floor"]
    print(
        f"{res['model']}: {res['tokens']} tokens, {res['lens_layers']} lens layers, "
        f"d {res['d_model']}, vocab {res['vocab']}, top-{res['lens_top_k']}; torch "
        f"{res['torch']}, {res['threads']} threads; load avg "
        f"{res['loadavg_start'][0]:.1f} -> {res['loadavg_end'][0]:.1f}"
    )
    print(
        f"sgemm {g['shape']} fp32 ({len(g['times_s'])} runs): best {g['min_s']:.3f} s -> "
        f"{g['gflops_best']:.0f} GFLOP/s; median {g['median_s']:.3f} s -> "
        f"{g['gflops_median']:.0f} GFLOP/s"
    )
    print(
        f"FLOP floor: forward {f['forward_gflop']:.1f} + lens {f['lens_gflop']:.1f} = "
        f"{f['total_gflop']:.1f} GFLOP -> {f['seconds']:.3f} s at the best sgemm rate "
        f"({f['seconds_at_median_rate']:.3f} s at the median rate)"
    )
    print(f"timings: median (min) of {res['repeats']} runs after a warm-up round\n")
    header = (
        f"{'method':<36} {'median s':>9} {'min s':>7} {'x floor':>8} {'x layerscope':>13} "
        f"{'top-1 agree':>12} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in res["rows"]:
        mem = res["memory"].get(r["method"], {})
        peak = f"{mem['peak_rss_gb']:.2f} GB" if "peak_rss_gb" in mem else "-"
        print(
            f"{r['label']:<36} {r['median_s']:>9.3f} {r['min_s']:>7.3f} "
            f"{r['x_flop_floor']:>8.2f} {r['vs_layerscope']:>13.2f} "
            f"{r['top1_agree_pct']:>11.2f}% {peak:>9}"
        )
    ls = res["rows"][0]
    print(
        f"  layerscope median at the median sgemm rate: "
        f"{ls['x_flop_floor_at_median_rate']:.2f}x the floor"
    )
    for r in res["rows"]:
        if "forward_median_s" in r:
            print(
                f"  {r['label']}: forward {r['forward_median_s']:.3f} s + "
                f"lens {r['lens_median_s']:.3f} s (medians)"
            )
    for r in res["rows"]:
        for g in r["top1_disagree_logit_gaps"]:
            print(
                f"  {r['method']}: top-1 differs at layer {g['layer']}, position {g['pos']}: "
                f"ids {g['ids'][0]} vs {g['ids'][1]}, logit gap {g['gap']:.2e}"
            )
    for name, mem in res["memory"].items():
        if "error" in mem:
            print(f"  memory of {name}: {mem['error']}")
    for name, why in res["skipped"].items():
        print(f"  skipped {name}: {why}")
    print()
    for line in verdicts(res):
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gemm-repeats", type=int, default=3, help="extra sgemm runs up front")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated: " + ",".join(PEERS))
    ap.add_argument("--no-attention", action="store_true", help="skip the attention=True row")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-method memory runs")
    ap.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_memory(args.child, args.tokens)
        return
    res = run_bench(args)
    print_table(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
