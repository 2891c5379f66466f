"""Command line: ``layerscope trace | models | fetch | serve``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from layerscope.errors import InputError, LayerscopeError


def parse_ids(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``, with a clear error for anything else."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise InputError(f"--ids must be comma-separated integers, got {text!r}")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise InputError(f"--ids must be comma-separated integers, got {text!r}") from None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerscope",
        description="See how a transformer language model arrives at its output, layer by layer.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    trace = sub.add_parser("trace", help="trace a prompt and print the logit lens")
    trace.add_argument("text", nargs="?", help="the prompt (omit when using --ids)")
    trace.add_argument("--model", default=None, help="catalog name or model directory")
    trace.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: best)")
    trace.add_argument("--step", type=int, default=None, help="nanochat checkpoint step")
    trace.add_argument("--generate", type=int, default=0, metavar="N", help="tokens to generate")
    trace.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    trace.add_argument("--seed", type=int, default=0)
    trace.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    trace.add_argument("--top-k", type=int, default=None, help="sample from the top K tokens")
    trace.add_argument("--lens-k", type=int, default=10, help="lens predictions kept per cell")
    trace.add_argument("--ids", default=None, help="trace raw token ids, e.g. 1,2,3 (no BOS)")
    trace.add_argument("--json", action="store_true", help="print one JSON object")
    trace.add_argument(
        "--compiled",
        action="store_true",
        help="compile the fused CPU lens kernel first (pays off for long traces)",
    )

    sub.add_parser("models", help="list the models that can be loaded here")

    fetch = sub.add_parser("fetch", help="download a catalog model (needs a network)")
    fetch.add_argument("name", choices=["nanochat-d32"])

    serve = sub.add_parser("serve", help="start the web app")
    serve.add_argument("--model", default=None, help="catalog name or model directory")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    return parser


def _cmd_trace(args: argparse.Namespace) -> int:
    from layerscope import load
    from layerscope.report import format_trace

    ids = parse_ids(args.ids) if args.ids is not None else None
    if ids is None and (args.text is None or not args.text.strip()):
        raise InputError("the prompt is empty: give a prompt, or --ids")
    model = load(args.model, device=args.device, step=args.step)
    if args.compiled:
        from layerscope.engine import fused

        fused.enable()
    trace = model.trace(
        args.text,
        ids=ids,
        generate=args.generate,
        chat=args.chat,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        lens_top_k=args.lens_k,
        attention=False,
        keep_capture=False,
    )
    if args.json:
        json.dump(trace.to_dict(), sys.stdout, ensure_ascii=False, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        print(format_trace(trace))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from layerscope.models.catalog import available_models
    from layerscope.report import format_size

    rows = available_models()
    width = max(len(r.name) for r in rows)
    for r in rows:
        size = format_size(r.size_bytes) if r.size_bytes is not None else "-"
        print(f"{r.name:<{width}}  {size:>9}  {r.description}")
        print(f"{'':<{width}}  {'':>9}  {r.location}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from layerscope.models.nanochat import fetch_d32

    path = fetch_d32(progress=True)
    print(f"nanochat-d32 is in {path}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from layerscope.server import serve
    except ImportError as exc:
        raise LayerscopeError(f"the web app is not available in this install: {exc}") from None
    serve(args.model, host=args.host, port=args.port)
    return 0


COMMANDS = {"trace": _cmd_trace, "models": _cmd_models, "fetch": _cmd_fetch, "serve": _cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``layerscope`` console script."""
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LayerscopeError as exc:
        print(f"layerscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
