"""The explorer for one trace as a single self-contained HTML page, and inline in a notebook.

The page is the web app's own ``index.html`` with the block between its ``served:begin`` and
``served:end`` markers (stylesheet link and script tags) replaced by the stylesheet inline, and
before ``</body>``: the trace document (:func:`layerscope.engine.trace_file.to_document`) in a
``<script type="application/json" id="layerscope-trace">``, Plotly's cartesian build and the
standalone bundle (``web/js/standalone.js`` bundled by ``make web``). Nothing is fetched: the
page scrubs, hovers and draws the heatmap from the embedded data, offline. The web app's
Download button builds the same page in the browser (``web/js/core/export.js``).
"""

from __future__ import annotations

import html
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from layerscope.errors import LayerscopeError, MissingPackageError

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
EMBED_ID = "layerscope-trace"
# What a page inlines, relative to WEB_DIR (vendor/ is filled by `make web`).
ASSETS = {
    "page": "index.html",
    "css": "css/app.css",
    "plotly": "vendor/plotly-cartesian.min.js",
    "app": "vendor/standalone.js",
}
SERVED = re.compile(r"<!-- served:begin.*?<!-- served:end -->", re.S)
TITLE = re.compile(r"<title>.*?</title>", re.S)
FRAME_HEIGHT = 760  # px; the page grows its frame to fit once it runs


class ExportError(LayerscopeError, RuntimeError):
    """The HTML page cannot be built (the web bundle is missing)."""


def script_safe(text: str) -> str:
    """Text that may sit inside a ``<script>`` element: no ``</script`` or ``<!--`` in it."""
    text = re.sub(r"</(script)", r"<\\/\1", text, flags=re.I)
    return text.replace("<!--", "<\\!--")


@cache
def _asset(name: str, mtime: float) -> str:
    return (WEB_DIR / ASSETS[name]).read_text(encoding="utf-8")


def asset(name: str) -> str:
    """One file the page inlines (cached while it is unchanged); a clear error if missing."""
    path = WEB_DIR / ASSETS[name]
    if not path.is_file():
        raise ExportError(
            f"{path} is missing: run `make web` (npm ci, then esbuild bundles the standalone page)"
        )
    return _asset(name, path.stat().st_mtime)


def page_html(doc: dict[str, Any], title: str = "layerscope") -> str:
    """The page for a trace document (``to_document``'s dict)."""
    page = asset("page")
    if not SERVED.search(page):
        raise ExportError("web/index.html has no served:begin/served:end block")
    # "<" escaped as \u003c: the JSON stays valid and cannot end its <script> element.
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    head = f"<title>{html.escape(title)}</title>\n<style>\n{asset('css')}\n</style>"
    tail = (
        f'<script type="application/json" id="{EMBED_ID}">{data}</script>\n'
        f"<script>{script_safe(asset('plotly'))}</script>\n"
        f'<script type="module">{script_safe(asset("app"))}</script>\n'
    )
    page = SERVED.sub(lambda _: head, TITLE.sub("", page, count=1), count=1)
    return page.replace("</body>", tail + "</body>", 1)


def trace_document(trace: Any) -> dict[str, Any]:
    """What the page embeds: the trace file's document, without extras (no view reads them)."""
    from layerscope.engine.trace_file import to_document

    doc = to_document(trace)
    doc["extras"] = {}
    return doc


def trace_title(trace: Any) -> str:
    """A title naming the trace: the start of its text and the model."""
    text = "".join(trace.token_text.get(i, "") for i in trace.ids).strip()
    text = text if len(text) <= 60 else text[:59] + "…"
    return f"layerscope — {text} ({trace.model_name})"


def trace_html(trace: Any) -> str:
    """The self-contained page for ``trace``."""
    return page_html(trace_document(trace), trace_title(trace))


def save_html(trace: Any, path: str | os.PathLike[str]) -> Path:
    """Write the explorer for ``trace`` as one HTML file that opens offline in any browser."""
    out = Path(path)
    out.write_text(trace_html(trace), encoding="utf-8")
    return out


def iframe_html(page: str, height: int = FRAME_HEIGHT) -> str:
    """``page`` in an ``<iframe srcdoc>``: each output is its own document (ids, keys, styles
    and scripts of several outputs on one notebook page cannot clash)."""
    return (  # in a div: IPython warns about bare iframes (its IFrame class cannot take srcdoc)
        '<div class="layerscope-output">'
        f'<iframe srcdoc="{html.escape(page, quote=True)}" title="layerscope explorer" '
        f'style="width:100%;height:{height}px;border:1px solid #e2e5ec;border-radius:8px" '
        'loading="eager"></iframe></div>'
    )


def show(trace: Any) -> None:
    """Display the explorer for ``trace`` inline (Jupyter Lab/Notebook, VS Code notebooks)."""
    try:
        from IPython.display import HTML, display
    except ImportError as e:
        raise MissingPackageError(
            "trace.show() displays in a notebook and needs IPython (pip install ipython, or run "
            "it in Jupyter); trace.save_html(path) writes a page any browser opens"
        ) from e
    display(HTML(iframe_html(trace_html(trace))))
