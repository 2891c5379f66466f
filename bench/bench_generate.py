"""Greedy generation speed on CPU: layerscope's traced decoding, ``generate()``, and the floor.

    python bench/bench_generate.py                   # readable table
    python bench/bench_generate.py --json out.json   # the same figures as JSON
    python bench/bench_generate.py --new-tokens 64 --repeats 3 --threads 2

Three ways to decode ``--new-tokens`` tokens greedily after a short prompt, on the default model
(``layerscope.load(None, device="cpu")``), all in this one process:
- ``layerscope``: ``run_trace(model, ids=..., generate=N, temperature=0.0, attention=...)``, which
  records everything the trace needs at every step (residual stream, head outputs, MLP outputs and,
  with ``attention=True``, the attention probabilities through the eager kernel). Its time is the
  trace's ``timings["forward"]`` (the capture: prefill + N KV-cached steps, each of which feeds one
  token through the model), not the lens read afterwards. Per token: (forward(N) - forward(0)) / N.
- ``generate()``: ``hf.generate(ids, max_new_tokens=N, min_new_tokens=N, do_sample=False)`` on
  the same underlying HF model, with its own attention kernel (usually SDPA). generate(N) runs the
  prefill and N - 1 one-token steps (its last token is never fed back), so per token:
  (t(N) - t(1)) / (N - 1).
- the floor: one matrix-vector product per weight matrix a decoding step multiplies (every
  ``nn.Linear`` weight in the blocks, plus the unembedding; the embedding lookup excluded), back to
  back, as ``torch.mv(W, x)`` and as ``F.linear(x[1, 1, d], W)`` (the call the model makes); the
  faster sum of a round, best of all rounds, is the floor per token. The implied weight streaming
  rate is the bytes of those matrices over that time.

Rounds: one warm-up round, then ``--repeats`` rounds, each running every method once (interleaved,
so a busy machine slows them alike); per-token times are computed within a round and the table
shows medians (and minima). The greedy tokens of layerscope (both attention settings) and of
``generate()`` must be identical: a mismatch is reported (first differing position, both tokens,
their logit gap there) and the script exits with status 1 after printing the figures.
No network is used (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
try:
    import layerscope
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(ROOT / "src"))
    import layerscope
from layerscope.engine.trace import run_trace  # noqa: E402  (after the path fallback)

PROMPT = "The logit lens reads the residual stream of a transformer after every layer. In short,"
FLOOR_ROUNDS = 10  # floor rounds up front; one more runs in every round


# ---------------------------------------------------------------------------------------------
# The model and what the floor multiplies
# ---------------------------------------------------------------------------------------------
def hf_of(model: Any) -> nn.Module:
    """The Hugging Face ``*ForCausalLM`` behind a loaded model (``generate()`` needs one)."""
    for owner in (model, getattr(model, "model", None)):
        hf = getattr(owner, "hf", None)
        if isinstance(hf, nn.Module) and hasattr(hf, "generate"):
            return hf
    raise SystemExit(
        f"{type(model).__name__} has no Hugging Face model (.hf): generate() cannot be compared"
    )


def n_blocks(model: Any) -> int:
    info = model.info
    return int(getattr(info, "n_blocks", None) or info.n_layers)


def decode_weights(model: Any, hf: nn.Module) -> list[tuple[str, torch.Tensor, bool]]:
    """(name, weight, transposed) of every matrix one decoding step multiplies: the linear layers
    of every block, then the unembedding. ``transposed``: a GPT-2 Conv1D weight [in, out]."""
    blocks = list(getattr(model, "blocks", None) or hf.model.layers)
    out: list[tuple[str, torch.Tensor, bool]] = []
    seen: set[int] = set()
    for b, block in enumerate(blocks):
        for name, mod in block.named_modules():
            w = getattr(mod, "weight", None)
            is_linear = isinstance(mod, nn.Linear)
            is_conv1d = type(mod).__name__ == "Conv1D" and w is not None and w.dim() == 2
            if (is_linear or is_conv1d) and w.data_ptr() not in seen:
                seen.add(w.data_ptr())
                out.append((f"blocks.{b}.{name}", w.detach(), is_conv1d))
    head = hf.get_output_embeddings()
    out.append(("unembed", head.weight.detach(), False))  # tied to the embedding: counted once
    return out


class Floor:
    """One matrix-vector product per decode weight, timed back to back."""

    def __init__(self, weights: list[tuple[str, torch.Tensor, bool]]) -> None:
        self.weights = weights
        self.bytes = sum(w.numel() * w.element_size() for _, w, _ in weights)
        self.n_params = sum(w.numel() for _, w, _ in weights)
        gen = torch.Generator().manual_seed(0)
        self.inputs = {}
        for _, w, transposed in weights:
            d_in = w.shape[0] if transposed else w.shape[1]
            if d_in not in self.inputs:
                self.inputs[d_in] = torch.randn(d_in, generator=gen, dtype=w.dtype)
        self.mv_s: list[float] = []
        self.linear_s: list[float] = []

    def _mv(self) -> float:
        ins = self.inputs
        t0 = time.perf_counter()
        for _, w, transposed in self.weights:
            if transposed:
                x = ins[w.shape[0]]
                torch.mm(x[None], w)
            else:
                torch.mv(w, ins[w.shape[1]])
        return time.perf_counter() - t0

    def _linear(self) -> float:
        ins = {d: x[None, None] for d, x in self.inputs.items()}
        t0 = time.perf_counter()
        for _, w, transposed in self.weights:
            if transposed:
                torch.matmul(ins[w.shape[0]], w)
            else:
                F.linear(ins[w.shape[1]], w)
        return time.perf_counter() - t0

    def run(self) -> None:
        with torch.inference_mode():
            self.mv_s.append(self._mv())
            self.linear_s.append(self._linear())

    def summary(self) -> dict[str, Any]:
        best_mv, best_lin = min(self.mv_s), min(self.linear_s)
        best = min(best_mv, best_lin)
        return {
            "matrices": len(self.weights),
            "params": self.n_params,
            "bytes": self.bytes,
            "mv_best_s": best_mv,
            "mv_median_s": statistics.median(self.mv_s),
            "linear_best_s": best_lin,
            "linear_median_s": statistics.median(self.linear_s),
            "floor_s": best,
            "floor_kernel": "torch.mv" if best_mv <= best_lin else "F.linear",
            "gb_per_s": self.bytes / best / 1e9,
            "gb_per_s_median": self.bytes
            / min(statistics.median(self.mv_s), statistics.median(self.linear_s))
            / 1e9,
            "rounds": len(self.mv_s),
        }


# ---------------------------------------------------------------------------------------------
# The methods
# ---------------------------------------------------------------------------------------------
class Layerscope:
    def __init__(self, model: Any, attention: bool) -> None:
        self.model = model
        self.attention = attention
        self.name = "layerscope_attn" if attention else "layerscope"
        self.label = f"layerscope (attention={attention})"
        self.per_token_s: list[float] = []
        self.total_s: list[float] = []
        self.prefill_s: list[float] = []
        self.ids: list[int] = []

    def _forward_s(self, ids: list[int], n: int) -> tuple[float, list[int]]:
        trace = run_trace(
            self.model,
            ids=ids,
            generate=n,
            temperature=0.0,
            attention=self.attention,
        )
        return float(trace.timings["forward"]), list(trace.ids)

    def round(self, ids: list[int], n: int, record: bool) -> None:
        full, out = self._forward_s(ids, n)
        prefill, _ = self._forward_s(ids, 0)
        self.ids = out
        if record:
            self.per_token_s.append((full - prefill) / n)
            self.total_s.append(full)
            self.prefill_s.append(prefill)


class Generate:
    name = "generate"

    def __init__(self, hf: nn.Module, attn_impl: str | None, pad_id: int | None) -> None:
        self.hf = hf
        self.attn_impl = attn_impl
        self.pad_id = pad_id
        self.label = f"transformers generate() ({attn_impl or 'default'} attention)"
        self.per_token_s: list[float] = []
        self.total_s: list[float] = []
        self.prefill_s: list[float] = []
        self.ids: list[int] = []

    def _restore_attention(self) -> None:
        """layerscope switches the model to eager attention for attention=True and back to the
        model's own kernel otherwise; generate() gets the kernel the model was loaded with."""
        cfg = self.hf.config
        if self.attn_impl and getattr(cfg, "_attn_implementation", None) != self.attn_impl:
            setter = getattr(self.hf, "set_attn_implementation", None)
            if setter is not None:
                setter(self.attn_impl)
            else:
                cfg._attn_implementation = self.attn_impl

    def _generate_s(self, ids: list[int], n: int) -> tuple[float, list[int]]:
        x = torch.tensor([ids])
        self._restore_attention()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.hf.generate(
                x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=n,
                min_new_tokens=n,  # EOS masked: both sides produce n tokens
                do_sample=False,
                temperature=None,  # the checkpoint's sampling defaults do not apply
                top_p=None,
                top_k=None,
                pad_token_id=self.pad_id,
            )
        dt = time.perf_counter() - t0
        return dt, out[0].tolist()

    def round(self, ids: list[int], n: int, record: bool) -> None:
        full, out = self._generate_s(ids, n)
        one, _ = self._generate_s(ids, 1)
        self.ids = out
        if record:
            self.per_token_s.append((full - one) / (n - 1))
            self.total_s.append(full)
            self.prefill_s.append(one)


# ---------------------------------------------------------------------------------------------
def first_mismatch(
    model: Any, hf: nn.Module, n_prompt: int, a: list[int], b: list[int]
) -> dict[str, Any] | None:
    """Where two greedy sequences first differ, the two tokens and the logit gap between them
    there (one plain forward pass over the common prefix), to tell a near-tie from a bug."""
    if a == b:
        return None
    pos = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if pos is None:
        return {"position": min(len(a), len(b)), "lengths": [len(a), len(b)]}
    with torch.inference_mode():
        logits = hf(input_ids=torch.tensor([a[:pos]])).logits[0, -1].float()
    tok = model.tokenizer
    return {
        "position": pos,
        "generated_index": pos - n_prompt,
        "ids": [a[pos], b[pos]],
        "texts": [tok.token_text(a[pos]), tok.token_text(b[pos])],
        "logit_gap": float(logits[a[pos]] - logits[b[pos]]),
        "lengths": [len(a), len(b)],
    }


def row(m: Layerscope | Generate, n: int, gen_s: float, floor_s: float) -> dict[str, Any]:
    med = statistics.median(m.per_token_s)
    return {
        "method": m.name,
        "label": m.label,
        "per_token_median_s": med,
        "per_token_min_s": min(m.per_token_s),
        "per_token_s": m.per_token_s,
        "tokens_per_s": 1.0 / med,
        "x_generate": med / gen_s,
        "x_floor": med / floor_s,
        "prefill_median_s": statistics.median(m.prefill_s),
        "total_median_s": statistics.median(m.total_s),
        "tokens_per_s_incl_prefill": n / statistics.median(m.total_s),
    }


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    model = layerscope.load(None, device="cpu")
    load_s = time.perf_counter() - t0
    hf = hf_of(model)
    attn_impl = getattr(hf.config, "_attn_implementation", None)  # before any trace switches it
    ids = model.tokenizer.encode(args.prompt)
    n = args.new_tokens
    if n < 2:
        raise SystemExit("--new-tokens must be >= 2")
    gc = hf.generation_config
    pad_id = gc.pad_token_id if gc.pad_token_id is not None else gc.eos_token_id
    pad_id = pad_id[0] if isinstance(pad_id, list) else pad_id  # batch of one: only silences

    floor = Floor(decode_weights(model, hf))
    for _ in range(FLOOR_ROUNDS):
        floor.run()
    methods: list[Layerscope | Generate] = [
        Layerscope(model, attention=True),
        Layerscope(model, attention=False),
        Generate(hf, attn_impl, pad_id),
    ]
    for r in range(args.repeats + 1):  # round 0 is the warm-up
        for m in methods:
            m.round(ids, n, record=r > 0)
        floor.run()
        if r == 0:
            short = [m.label for m in methods if len(m.ids) != len(ids) + n]
            if short:
                raise SystemExit(
                    f"{', '.join(short)} stopped before {n} tokens (an end-of-sequence token?): "
                    "choose another --prompt"
                )
    fl = floor.summary()
    gen = methods[-1]
    gen_s = statistics.median(gen.per_token_s)
    rows = [row(m, n, gen_s, fl["floor_s"]) for m in methods]
    ref = gen.ids
    mismatches = {}
    for m in methods[:-1]:
        mm = first_mismatch(model, hf, len(ids), m.ids, ref)
        if mm is not None:
            mismatches[m.name] = mm
    tok = model.tokenizer
    info = model.info
    return {
        "model": info.name,
        "blocks": n_blocks(model),
        "d_model": getattr(info, "d_model", None),
        "vocab": getattr(info, "vocab_size", None),
        "n_params": getattr(info, "n_params", None),
        "dtype": str(next(hf.parameters()).dtype).replace("torch.", ""),
        "prompt": args.prompt,
        "prompt_tokens": len(ids),
        "new_tokens": n,
        "repeats": args.repeats,
        "generate_attention": attn_impl,
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_s": load_s,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "floor": fl,
        "rows": rows,
        "tokens_identical": not mismatches,
        "mismatches": mismatches,
        "generated_text": tok.decode(ref[len(ids) :]),
        "generated_ids": ref[len(ids) :],
    }


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def print_table(res: dict[str, Any]) -> None:
    fl = res["floor"]
    print(
        f"{res['model']}: {res['blocks']} blocks, d {res['d_model']}, vocab {res['vocab']}, "
        f"{res['dtype']}; prompt {res['prompt_tokens']} tokens + {res['new_tokens']} greedy; "
        f"torch {res['torch']}, transformers {res['transformers']}, {res['threads']} threads; "
        f"load avg {res['loadavg_start'][0]:.1f} -> {res['loadavg_end'][0]:.1f}"
    )
    print(
        f"floor: {fl['matrices']} matrices, {fl['params'] / 1e6:.1f} M weights "
        f"({fl['bytes'] / 1e6:.0f} MB) per token; torch.mv {fl['mv_best_s'] * 1e3:.1f} ms, "
        f"F.linear {fl['linear_best_s'] * 1e3:.1f} ms (best of {fl['rounds']}) -> "
        f"{fl['floor_s'] * 1e3:.1f} ms = {fl['gb_per_s']:.1f} GB/s "
        f"({fl['gb_per_s_median']:.1f} GB/s at the median)"
    )
    print(
        f"per-token decode time: medians (min) of {res['repeats']} rounds after a warm-up "
        f"round; x = multiple of that time\n"
    )
    header = (
        f"{'method':<44} {'ms/token':>9} {'min':>7} {'tokens/s':>9} {'x generate':>11} "
        f"{'x floor':>8} {'prefill ms':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in res["rows"]:
        print(
            f"{r['label']:<44} {r['per_token_median_s'] * 1e3:>9.1f} "
            f"{r['per_token_min_s'] * 1e3:>7.1f} {r['tokens_per_s']:>9.1f} "
            f"{r['x_generate']:>11.2f} {r['x_floor']:>8.2f} {r['prefill_median_s'] * 1e3:>11.0f}"
        )
    print(
        f"{'floor (one mat-vec per weight matrix)':<44} {fl['floor_s'] * 1e3:>9.1f} {'':>7} "
        f"{1 / fl['floor_s']:>9.1f} {'':>11} {1.0:>8.2f}"
    )
    for r in res["rows"]:
        print(
            f"  {r['label']}: {res['new_tokens']} tokens incl. prefill in "
            f"{r['total_median_s']:.2f} s = {r['tokens_per_s_incl_prefill']:.1f} tokens/s"
        )
    print()
    if res["tokens_identical"]:
        print(
            f"tokens: identical ({res['new_tokens']} greedy tokens, layerscope with and without "
            "attention = generate())"
        )
    else:
        for name, mm in res["mismatches"].items():
            if "ids" in mm:
                print(
                    f"TOKENS DIFFER: {name} vs generate at position {mm['position']} (generated "
                    f"token {mm['generated_index']}): ids {mm['ids'][0]} {mm['texts'][0]!r} vs "
                    f"{mm['ids'][1]} {mm['texts'][1]!r}; logit gap there {mm['logit_gap']:.3e}"
                )
            else:
                print(f"TOKENS DIFFER: {name} vs generate: lengths {mm['lengths']}")
    print(f"text: {res['generated_text']!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run_bench(args)
    print_table(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if res["tokens_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
