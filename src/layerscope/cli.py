"""Command line: ``layerscope trace | attribute | models | fetch | serve``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from layerscope import cli_experiments
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
    cli_experiments.add_arguments(trace)

    attr = sub.add_parser("attribute", help="which input tokens drive a prediction")
    attr.add_argument("text", help="the prompt")
    attr.add_argument("--target", default=None, help="one token (default: the top prediction)")
    attr.add_argument(
        "--method",
        default="integrated_gradients",
        choices=["integrated_gradients", "gradient_x_input"],
    )
    attr.add_argument("--steps", type=int, default=64, help="integration steps (IG)")
    attr.add_argument("--model", default=None, help="catalog name or model directory")
    attr.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: best)")
    attr.add_argument("--step", type=int, default=None, help="nanochat checkpoint step")
    attr.add_argument("--json", action="store_true", help="print one JSON object")

    ask = sub.add_parser("ask", help="ask the knowledge base a question (a cited answer)")
    ask.add_argument("question")
    ask.add_argument("--retrieve-only", action="store_true", help="only find the passages (fast)")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--model", default=None, help="model that writes the answer (default model)")
    ask.add_argument("--k", type=int, default=4, help="passages to retrieve and cite")
    ask.add_argument("--chat-endpoint", default=None, metavar="URL", help="OpenAI-compatible API")
    ask.add_argument("--chat-model", default=None, metavar="NAME", help="the endpoint's model")

    sub.add_parser("models", help="list the models that can be loaded here")

    fetch = sub.add_parser("fetch", help="download a catalog model (needs a network)")
    fetch.add_argument("name", choices=["nanochat-d32", "gemma3-270m"])
    fetch.add_argument(
        "--accept-license",
        action="store_true",
        help="accept the model's licence without asking (gemma3-270m: the Gemma Terms of Use)",
    )

    serve = sub.add_parser("serve", help="start the web app")
    serve.add_argument("--model", default=None, help="catalog name or model directory")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name or address this server answers to (repeatable; default: loopback "
        "names and the --host address; requests naming other hosts are refused)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="URL",
        help="a site whose pages may use this server, e.g. https://notebook.example:8888 "
        "(repeatable; default: only the server's own pages)",
    )
    serve.add_argument(
        "--chat-endpoint", default=None, metavar="URL", help="OpenAI-compatible chat API (base URL)"
    )
    serve.add_argument("--chat-model", default=None, metavar="NAME", help="the endpoint's model")
    serve.add_argument(
        "--log-json",
        action="store_true",
        help="write the server's logs (a line per request, with its id) as JSON lines on stderr",
    )
    serve.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change one of the server's limits (repeatable), e.g. client_pending=32 or "
        "client_rate=50; the names and defaults are in the README's Serving section",
    )
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
    interventions, note = cli_experiments.build(model, args)
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
        interventions=interventions,
    )
    rep = cli_experiments.report(model, trace, interventions, note, args) if interventions else None
    if args.json:
        doc = trace.to_dict() if rep is None else {**trace.to_dict(), "experiment": rep}
        json.dump(doc, sys.stdout, ensure_ascii=False, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        print(format_trace(trace))
        if rep is not None:
            print("\n" + cli_experiments.format_report(model, trace, rep))
    return 0


def _cmd_attribute(args: argparse.Namespace) -> int:
    from layerscope import load

    if not args.text.strip():
        raise InputError("the prompt is empty")
    model = load(args.model, device=args.device, step=args.step)
    result = model.attribute(args.text, target=args.target, method=args.method, steps=args.steps)
    if args.json:
        out = {"model": model.info.name, **result.to_dict()}
        json.dump(out, sys.stdout, ensure_ascii=False, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        print(f"model {model.info.name}\n{result.format()}")
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
    if args.name == "gemma3-270m":
        return _fetch_gemma3(args.accept_license)
    from layerscope.models.nanochat import fetch_d32

    path = fetch_d32(progress=True)
    print(f"nanochat-d32 is in {path}")
    return 0


def _fetch_gemma3(accept_license: bool) -> int:
    from layerscope.models import gemma3

    def ask(question: str) -> bool:  # an interactive yes, only when someone can answer
        if not sys.stdin.isatty():
            return False
        return input(question).strip().lower() in ("y", "yes")

    path = gemma3.fetch(accept_license=accept_license, confirm=ask)
    print(f"gemma3-270m is ready in {path}; load it with --model gemma3-270m")
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    from layerscope.learn.chat import Delta, Done, answer, generator_for
    from layerscope.learn.endpoint import EndpointConfig
    from layerscope.learn.index import Index

    if not args.question.strip():
        raise InputError("the question is empty")
    index = Index.load_or_build()
    generator = None
    if not args.retrieve_only:
        endpoint = EndpointConfig.from_env(args.chat_endpoint, args.chat_model)
        model = None
        if endpoint is None:
            from layerscope import load

            model = load(args.model)
        generator = generator_for(model, endpoint)
    events = answer(
        args.question, None, (), generator, index=index, k=args.k, retrieve_only=args.retrieve_only
    )
    done = None
    for event in events:
        if isinstance(event, Done):
            done = event
        elif isinstance(event, Delta) and not args.json:
            sys.stdout.write(("\n\n" if event.replace else "") + event.text)
            sys.stdout.flush()
    assert done is not None
    if args.json:
        keys = ("doc", "title", "text", "score")
        out = {"answer": done.answer, "sources": [{k: s[k] for k in keys} for s in done.sources]}
        json.dump(out, sys.stdout, ensure_ascii=False, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    print(f"\n\nSources ({done.mode} answer):")
    for i, s in enumerate(done.sources, 1):
        where = f"{s['doc']}.md#{s['anchor']}" if s["anchor"] else f"{s['doc']}.md"
        heading = f" — {s['heading']}" if s["heading"] else ""
        print(f"  [{i}] {s['title']}{heading}  ({where})")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from layerscope.server import serve
    except ImportError as exc:
        raise LayerscopeError(f"the web app is not available in this install: {exc}") from None
    if args.chat_endpoint:  # read by the chat (layerscope.learn.endpoint), never sent to pages
        os.environ["LAYERSCOPE_CHAT_URL"] = args.chat_endpoint
    if args.chat_model:
        os.environ["LAYERSCOPE_CHAT_MODEL"] = args.chat_model
    from layerscope.server.limits import Limits
    from layerscope.server.security import normalize_origin

    for origin in args.allow_origin:  # a bad one is an input error before the model loads
        try:
            normalize_origin(origin)
        except ValueError as exc:
            raise InputError(f"--allow-origin: {exc}") from None
    try:
        limits = Limits.parse(args.limit)
    except ValueError as exc:
        raise InputError(f"--limit {exc}") from None
    serve(
        args.model,
        host=args.host,
        port=args.port,
        allow_hosts=args.allow_host,
        allow_origins=args.allow_origin,
        log_json=args.log_json,
        limits=limits,
    )
    return 0


COMMANDS = {
    "ask": _cmd_ask,
    "trace": _cmd_trace,
    "attribute": _cmd_attribute,
    "models": _cmd_models,
    "fetch": _cmd_fetch,
    "serve": _cmd_serve,
}


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
