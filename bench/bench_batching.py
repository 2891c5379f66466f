"""Batched traces against the same traces one at a time: what sharing a forward pass saves.

    python bench/bench_batching.py                      # default model, CPU, B = 1 2 4 8, T = 8 32
    python bench/bench_batching.py --sizes 1,4 --tokens 8 --repeats 5 --json out.json

For B prompts of T tokens (plain traces: prefill + lens, top-5 lens as the server asks) it times
``run_traces`` (one forward pass for the batch where that is exact, then the lens per prompt)
and B sequential ``run_trace`` calls, interleaved round by round after a warm-up round, and
reports the median time of each and their ratio (batched / sequential; below 1 pays). The
forward pass alone is timed the same way (``capture_batch`` against B ``capture`` calls), since
that is the only part batching changes. ``latency_end`` and ``latency_each`` are the mean time
until a job of the batch has its answer, batched / sequential (sequential job k waits for jobs
0..k), derived from those medians: ``end`` when every job of a batch is answered once the whole
batch is done (the worker's ``Batching.run`` returns a list), ``each`` if a job were answered as
soon as its own lens is done. Ratios are given of the medians and of the minima (the least
disturbed run of each: on a loaded machine, the steadier figure; the latency ratios use these).
``exact`` says whether the batch's pass is bit for bit
the single passes on this machine (:func:`~layerscope.engine.batching.batch_is_exact`); where it
is not, ``run_traces`` runs prompt by prompt and its ratio is about 1. Speed is only ever reported
as ratios measured in one run: absolute times on a shared machine mean little. The fused lens
kernel is on, as in the server (``--eager`` turns it off). No network (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
from layerscope.engine.batching import batch_is_exact, capture_batch, run_traces  # noqa: E402
from layerscope.engine.capture import capture  # noqa: E402
from layerscope.engine.trace import run_trace  # noqa: E402

TEXT = (
    "The logit lens reads the residual stream of a transformer after every layer through the "
    "model's own final norm and unembedding. Early layers often predict generic tokens such as "
    "punctuation or common words; the middle layers begin to agree with the final answer, and "
    "the last few layers sharpen it. Paris is the capital of France, Rome is the capital of "
    "Italy, and Madrid is the capital of Spain. Once upon a time there was a small model. "
)
LENS_TOP_K = 5  # the server's default


def prompts(model, n_prompts: int, n_tok: int) -> list[list[int]]:
    """``n_prompts`` different windows of ``n_tok`` tokens of TEXT."""
    ids = model.tokenizer.encode(TEXT * 4)
    step = max(1, (len(ids) - n_tok) // max(1, n_prompts))
    return [ids[i * step : i * step + n_tok] for i in range(n_prompts)]


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    model = layerscope.load(device=args.device).lens_model
    if not args.eager and not fused.enable():
        print("warning: fused lens kernel unavailable; eager lens", file=sys.stderr)
    sizes = [int(s) for s in args.sizes.split(",")]
    lengths = [int(t) for t in args.tokens.split(",")]
    cases = [(t, b) for t in lengths for b in sizes]
    batches = {(t, b): prompts(model, b, t) for t, b in cases}
    check_s = {}
    for t, b in cases:  # the one-time exactness check, outside the timed rounds
        check_s[(t, b)] = timed(lambda t=t, b=b: batch_is_exact(model, t, b))
    methods: dict[str, Callable[[list[list[int]]], Any]] = {
        "trace_batched": lambda batch: run_traces(model, batch, lens_top_k=LENS_TOP_K),
        "trace_sequential": lambda batch: [
            run_trace(model, ids=ids, lens_top_k=LENS_TOP_K) for ids in batch
        ],
        "forward_batched": lambda batch: capture_batch(model, batch),
        "forward_sequential": lambda batch: [capture(model, ids) for ids in batch],
    }
    times: dict[tuple[int, int], dict[str, list[float]]]
    times = {case: {name: [] for name in methods} for case in cases}
    load = [os.getloadavg()[0]]
    for rnd in range(args.repeats + 1):  # round 0 warms up
        for case in cases:
            for name, fn in methods.items():
                s = timed(lambda fn=fn, case=case: fn(batches[case]))
                if rnd:
                    times[case][name].append(s)
        load.append(os.getloadavg()[0])
        print(f"round {rnd} of {args.repeats} done (0 = warm-up)", file=sys.stderr, flush=True)
    rows = []
    for (t, b), per in times.items():
        med = {name: statistics.median(v) for name, v in per.items()}
        low = {name: min(v) for name, v in per.items()}
        at_end, each = latency_ratios(b, low)
        rows.append(
            {
                "tokens": t,
                "batch": b,
                "exact": batch_is_exact(model, t, b),
                "trace_ratio": med["trace_batched"] / med["trace_sequential"],
                "forward_ratio": med["forward_batched"] / med["forward_sequential"],
                "trace_ratio_min": low["trace_batched"] / low["trace_sequential"],
                "forward_ratio_min": low["forward_batched"] / low["forward_sequential"],
                "latency_end": at_end,
                "latency_each": each,
                "median_s": med,
                "min_s": low,
                "check_s": check_s[(t, b)],
            }
        )
    return {
        "model": model.info.name,
        "device": str(model.device),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "fused": fused.active(model.device),
        "repeats": args.repeats,
        "load_avg_1min": load,
        "rows": rows,
    }


def latency_ratios(b: int, med: dict[str, float]) -> tuple[float, float]:
    """Mean completion time batched / sequential: (all answered at the end, each when ready)."""
    per_trace = med["trace_sequential"] / b
    sequential = per_trace * (b + 1) / 2  # job k done after k + 1 traces
    lens = max(0.0, med["trace_batched"] - med["forward_batched"]) / b  # one prompt's lens
    at_end = med["trace_batched"]
    each = med["forward_batched"] + lens * (b + 1) / 2
    return at_end / sequential, each / sequential


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['model']} on {result['device']}, {result['threads']} threads of "
        f"{result['cpus']} CPUs, fused lens {result['fused']}, median of {result['repeats']}; "
        f"1-min load average during the run: "
        + " ".join(f"{x:.1f}" for x in result["load_avg_1min"])
    )
    print("ratio = batched / sequential time (below 1: batching pays); median and min ratios")
    head = ("T", "B", "exact", "trace", "forward", "trace_min", "fwd_min", "lat_end", "lat_each")
    widths = (4, 3, 6, 7, 7, 9, 7, 7, 8)
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for r in result["rows"]:
        print(
            f"{r['tokens']:>4} {r['batch']:>3} {r['exact']!s:>6} {r['trace_ratio']:>7.3f} "
            f"{r['forward_ratio']:>7.3f} {r['trace_ratio_min']:>9.3f} "
            f"{r['forward_ratio_min']:>7.3f} {r['latency_end']:>7.3f} {r['latency_each']:>8.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="1,2,4,8", help="batch sizes B, comma-separated")
    ap.add_argument("--tokens", default="8,32", help="prompt lengths T, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eager", action="store_true", help="lens without the fused kernel")
    ap.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    args = ap.parse_args()
    result = run_bench(args)
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
