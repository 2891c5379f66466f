"""``layerscope trace`` experiment flags: ablation and steering, and what they changed.

``--ablate-heads 3.4,5.1 --ablate-attn 2 --ablate-mlp 7 --ablate-layer 4 --ablate-mode zero|mean
[--ablate-reference TEXT]`` build one component :class:`~layerscope.Ablate`;
``--steer-positive TEXT --steer-negative TEXT [--steer-layer L] [--steer-strength S]
[--steer-where all|aligned|generated]`` build a steering vector (repeat both flags for several
pairs: CAA) and its :class:`~layerscope.Steer`. A trace with interventions also reports how the
final prediction changed against the clean run.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from layerscope.errors import InputError

DEFAULT_STEER_STRENGTH = 8.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ablation and steering flags to the ``trace`` parser."""
    g = parser.add_argument_group("experiments (ablation and steering)")
    g.add_argument("--ablate-heads", metavar="B.H,...", help="switch off heads, e.g. 3.4,5.1")
    g.add_argument("--ablate-attn", metavar="B,...", help="switch off attention layers of blocks")
    g.add_argument("--ablate-mlp", metavar="B,...", help="switch off the MLPs of blocks")
    g.add_argument("--ablate-layer", metavar="B,...", help="switch off whole blocks")
    g.add_argument(
        "--ablate-mode",
        choices=["zero", "mean"],
        default="zero",
        help="zero, or the mean over the prompt's positions (default zero)",
    )
    g.add_argument(
        "--ablate-reference",
        metavar="TEXT",
        help="mean ablation: take the mean over this text instead of the prompt",
    )
    g.add_argument(
        "--steer-positive", action="append", metavar="TEXT", help="steer towards (repeatable)"
    )
    g.add_argument(
        "--steer-negative", action="append", metavar="TEXT", help="steer away from (repeatable)"
    )
    g.add_argument(
        "--steer-layer", type=int, default=None, help="lens layer to steer (default: 0.3 x depth)"
    )
    g.add_argument(
        "--steer-strength",
        type=float,
        default=DEFAULT_STEER_STRENGTH,
        help=f"multiple of the steering vector to add (default {DEFAULT_STEER_STRENGTH:g})",
    )
    g.add_argument(
        "--steer-where",
        choices=["all", "aligned", "generated"],
        default=None,
        help="where to add it (default: aligned for one pair, generated for several)",
    )
    g.add_argument(
        "--target",
        default=None,
        help="token whose probability the experiment report follows (default: the clean top)",
    )


def parse_heads(text: str) -> list[tuple[int, int]]:
    """``"3.4,5.1"`` -> ``[(3, 4), (5, 1)]`` (block.head)."""
    out = []
    for part in _parts(text, "--ablate-heads", "block.head pairs like 3.4,5.1"):
        block, dot, head = part.partition(".")
        if not dot or not block.isdigit() or not head.isdigit():
            raise InputError(f"--ablate-heads takes block.head pairs like 3.4,5.1, got {part!r}")
        out.append((int(block), int(head)))
    return out


def parse_blocks(text: str, flag: str) -> list[int]:
    """``"2,7"`` -> ``[2, 7]``."""
    parts = _parts(text, flag, "comma-separated block numbers like 2,7")
    if not all(p.isdigit() for p in parts):
        raise InputError(f"{flag} takes comma-separated block numbers like 2,7, got {text!r}")
    return [int(p) for p in parts]


def _parts(text: str, flag: str, what: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise InputError(f"{flag} takes {what}, got {text!r}")
    return parts


def _validation(exc: ValidationError) -> InputError:
    first = exc.errors()[0]
    return InputError(str(first.get("msg", exc)).removeprefix("Value error, "))


def build(model: Any, args: argparse.Namespace) -> tuple[list, dict[str, Any]]:
    """The interventions the flags ask for, and a JSON-ready note on the steering vector."""
    interventions: list = []
    ablate: dict[str, Any] = {}
    if args.ablate_heads is not None:
        ablate["heads"] = parse_heads(args.ablate_heads)
    for flag, key, value in (
        ("--ablate-attn", "attn", args.ablate_attn),
        ("--ablate-mlp", "mlps", args.ablate_mlp),
        ("--ablate-layer", "layers", args.ablate_layer),
    ):
        if value is not None:
            ablate[key] = parse_blocks(value, flag)
    if args.ablate_reference is not None and args.ablate_mode != "mean":
        raise InputError("--ablate-reference needs --ablate-mode mean")
    if ablate:
        if args.ablate_reference is not None:
            if not args.ablate_reference.strip():
                raise InputError("the --ablate-reference text is empty")
            ablate["reference_ids"] = model.tokenizer.encode(args.ablate_reference)
        try:
            from layerscope.engine.interventions import Ablate  # torch: only when used

            interventions.append(Ablate(mode=args.ablate_mode, **ablate))
        except ValidationError as exc:
            raise _validation(exc) from None
    elif args.ablate_reference is not None or args.ablate_mode != "zero":
        raise InputError("--ablate-mode and --ablate-reference need something to ablate")
    note: dict[str, Any] = {}
    pos, neg = args.steer_positive, args.steer_negative
    if pos or neg:
        if not pos or not neg:
            raise InputError("steering needs both --steer-positive and --steer-negative")
        vector = model.steering_vector(pos, neg, layer=args.steer_layer)
        try:
            steer = vector.to_steer(args.steer_strength)
            if args.steer_where is not None and args.steer_where != steer.where:
                steer = _rewhere(vector, steer, args.steer_where)
        except ValidationError as exc:
            raise _validation(exc) from None
        interventions.append(steer)
        note = {k: v for k, v in vector.to_dict().items() if k != "vector"}
        note["strength"] = steer.strength
        note["where"] = steer.where
    elif args.steer_layer is not None or args.steer_where is not None:
        raise InputError("--steer-layer and --steer-where need --steer-positive/--steer-negative")
    return interventions, note


def _rewhere(vector: Any, steer: Any, where: str) -> Any:
    """The steer added elsewhere: an ActAdd matrix becomes the mean of its rows for 'all' or
    'generated'; a CAA vector cannot be 'aligned'."""
    from layerscope.engine.interventions import Steer

    vec = vector.vector
    if where == "aligned":
        if vec.ndim != 2:
            raise InputError("--steer-where aligned needs one contrast pair (ActAdd)")
        return steer
    if vec.ndim == 2:
        vec = vec.mean(axis=0)
    return Steer(layer=vector.layer, vector=vec.tolist(), strength=steer.strength, where=where)


def report(model: Any, trace: Any, interventions: list, note: dict, args) -> dict[str, Any]:
    """What the experiment changed: the clean run with the same settings, the effect on the
    next token after the prompt, and the generated text of both."""
    clean = model.trace(
        ids=trace.ids[: trace.n_prompt],
        generate=args.generate,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        lens_top_k=1,
        attention=False,
        keep_capture=False,
    )
    target = None
    if args.target is not None:
        ids = model.tokenizer.encode(args.target)
        bos = model.tokenizer.bos_id
        ids = ids[1:] if bos is not None and ids[:1] == [bos] else ids
        if not ids:
            raise InputError(f"--target {args.target!r} encodes to no token")
        target = ids[0]
    eff = model.effect(trace.ids[: trace.n_prompt], interventions, target_id=target)
    out = {
        "interventions": [iv.describe() for iv in interventions],
        "effect": {k: v for k, v in eff.to_dict().items() if k not in ("ids", "interventions")},
        "clean_tokens": clean.ids,
    }
    if note:
        out["steering"] = note
    return out


def format_report(model: Any, trace: Any, rep: dict[str, Any]) -> str:
    """The experiment report as lines for people."""
    text = model.tokenizer.token_text
    e = rep["effect"]
    lines = [f"experiment: {d}" for d in rep["interventions"]]
    if "steering" in rep:
        s = rep["steering"]
        lines.append(
            f"steering vector: {s['method']} at layer h_{s['layer']}, norm {s['norm']:.2f}"
            + (f", shorter prompt padded with {s['padding']}" if s["padding"] else "")
        )
    clean_top, new_top = e["top_clean"][0], e["top_new"][0]
    lines.append(
        f"next token after the prompt: clean {text(clean_top)!r} (p {e['top_clean_probs'][0]:.4f})"
        f" -> now {text(new_top)!r} (p {e['top_new_probs'][0]:.4f})"
        + ("" if clean_top != new_top else " (unchanged)")
    )
    lines.append(
        f"p({text(e['target_id'])!r}): {e['p_clean']:.4f} -> {e['p_new']:.4f} "
        f"(change {e['delta_p']:+.4f}; log p {e['logp_clean']:.3f} -> {e['logp_new']:.3f}, "
        f"change {e['delta_logp']:+.3f} nats)"
    )
    n = trace.n_prompt
    if len(trace.ids) > n or len(rep["clean_tokens"]) > n:
        decode = model.tokenizer.decode
        lines.append(f"generated, clean: {decode(rep['clean_tokens'][n:])!r}")
        lines.append(f"generated, now:   {decode(trace.ids[n:])!r}")
    return "\n".join(lines)
