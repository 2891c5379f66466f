"""Plain-text rendering of a trace for the terminal: a layer × position table."""

from __future__ import annotations

import shutil

from layerscope.engine.trace import Trace

CELL = 10


def _cell(text: str, width: int = CELL) -> str:
    shown = text.replace("\n", "\\n").replace("\t", "\\t")
    if len(shown) > width:
        shown = shown[: width - 1] + "…"
    return f"{shown:<{width}}"


def format_size(n: int) -> str:
    """Bytes in a short human unit."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def format_trace(trace: Trace, width: int | None = None) -> str:
    """The argmax token of every (layer, position), deepest layer last, with lock-in layers.

    Column t shows what each layer predicts *after* token t; a ``*`` marks cells that already agree
    with the final layer. Wide traces are split into blocks of columns that fit the terminal.
    """
    width = width or shutil.get_terminal_size((120, 24)).columns
    label_w = max(len(x) for x in [*trace.layers, "p(final)"]) + 2
    per_block = max(1, (width - label_w) // (CELL + 1))
    n_tok = len(trace.ids)
    lock = trace.lock_in()
    final = trace.lens.top_ids[-1, :, 0]
    lines = [
        f"model {trace.model_name} · {n_tok} tokens ({trace.n_prompt} prompt) · "
        f"{len(trace.layers)} lens layers · * = agrees with the final layer"
    ]
    for start in range(0, n_tok, per_block):
        cols = range(start, min(start + per_block, n_tok))
        lines.append("")
        lines.append(" " * label_w + " ".join(_cell(f"[{t}]") for t in cols))
        lines.append(
            "input".ljust(label_w) + " ".join(_cell(trace.token_text[trace.ids[t]]) for t in cols)
        )
        lines.append("-" * (label_w + len(cols) * (CELL + 1)))
        for layer in range(len(trace.layers) - 1, -1, -1):
            cells = []
            for t in cols:
                tid = int(trace.lens.top_ids[layer, t, 0])
                mark = "*" if tid == final[t] else " "
                cells.append(_cell(mark + trace.token_text[tid]))
            lines.append(trace.layers[layer].ljust(label_w) + " ".join(cells))
        lines.append("-" * (label_w + len(cols) * (CELL + 1)))
        lines.append("lock-in".ljust(label_w) + " ".join(_cell(f"h_{lock[t]}") for t in cols))
        lines.append(
            "p(final)".ljust(label_w)
            + " ".join(_cell(f"{trace.lens.top_probs[-1, t, 0]:.2f}") for t in cols)
        )
    if trace.n_prompt < n_tok:
        generated = "".join(trace.token_text[i] for i in trace.ids[trace.n_prompt :])
        lines += ["", f"generated: {generated!r}"]
    return "\n".join(lines)
