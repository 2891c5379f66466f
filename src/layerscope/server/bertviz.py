"""``GET /bertviz/{trace_id}``: bertviz's head view or model view of a stored trace, offline.

The page comes from the ``bertviz`` package itself (``head_view`` / ``model_view`` with
``html_action='return'``); its require.js, d3 5.7.0 and jQuery (2.2.4, the nearest 2.x to its
2.0.0 on npm) are rewritten from cdnjs to ``/static/vendor/`` (copied from npm by ``make web``).
The web app shows it in an iframe, so bertviz's globals stay apart from the page's.
"""

from __future__ import annotations

import re
from html import escape
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from layerscope.engine.trace import Trace
from layerscope.server.routes import PlainErrorsRoute
from layerscope.server.store import UnknownIdError

router = APIRouter(route_class=PlainErrorsRoute)

#: bertviz draws every token of every head in the browser: past this many tokens it stalls, so a
#: longer trace is shown a window at a time (``start``/``end``)
MAX_TOKENS = 128
_CDN = {
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js": (
        "/static/vendor/require.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/d3/5.7.0/d3.min": "/static/vendor/d3.min",
    "https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.0/jquery.min": "/static/vendor/jquery.min",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bertviz {view} view</title>
<style>body {{ margin: 8px; background: #fff; color: #1b2130;
  font: 13px system-ui, "DejaVu Sans", sans-serif; }} .err {{ color: #b3261e; }}</style>
</head><body>
{body}
</body></html>"""


def _page(view: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(view=view, body=body),
        status_code=status,
        headers={"Cache-Control": "no-cache"},
    )


def _error(view: str, message: str, status: int) -> HTMLResponse:
    return _page(view, f'<p class="err" id="bertviz-error">{escape(message)}</p>', status)


def offline(html: str) -> str:
    """bertviz's HTML with its CDN scripts pointed at our own server (ValueError if any remain)."""
    for cdn, local in _CDN.items():
        html = html.replace(cdn, local)
    if left := re.findall(r"https?://[^\s'\"]*cdn[^\s'\"]*", html):
        raise ValueError(f"bertviz's page still loads from a CDN: {left}")
    return html


def _ints(text: str | None, n: int, what: str) -> list[int] | None:
    if not text:
        return None
    try:
        out = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError as exc:
        raise ValueError(f"{what}: a comma-separated list of numbers, not {text!r}") from exc
    if not out or out[0] < 0 or out[-1] >= n:
        raise ValueError(f"{what} must lie in 0..{n - 1}")
    return out


_SCRIPT_BREAKERS = re.compile(r"</(?=script)|<!--", re.IGNORECASE)


def _token(text: str) -> str:
    # a token's text goes into an inline <script> as JSON (bertviz draws it as text): only
    # "</script" and "<!--" could end or confuse that script, so only they get a zero-width space
    return _SCRIPT_BREAKERS.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)


_HTML_ERRORS: dict[int | str, dict] = {
    code: {"description": what, "content": {"text/html": {}}}
    for code, what in (
        (400, "Bad input: a range or a list of blocks/heads outside the trace"),
        (404, "Unknown or expired trace, or one without attention patterns"),
        (503, "bertviz is not installed"),
    )
}


@router.get(
    "/bertviz/{trace_id}", response_class=HTMLResponse, tags=["bertviz"], responses=_HTML_ERRORS
)
def bertviz_page(
    trace_id: str,
    request: Request,
    view: Literal["head", "model"] = "head",
    start: int = Query(0, ge=0),
    end: int | None = Query(None, ge=1),
    layers: str | None = Query(None, description="blocks to include, e.g. 0,1,5 (default all)"),
    heads: str | None = Query(None, description="heads to include, e.g. 0,3 (default all)"),
) -> HTMLResponse:
    """bertviz's head view or model view of positions ``start``..``end`` (end exclusive, at most
    128) of a stored trace, for blocks ``layers`` and heads ``heads``; an HTML page that loads
    its scripts from this server."""
    ctx = request.app.state.ctx
    try:
        trace = ctx.store.get_as(trace_id, Trace)
    except UnknownIdError:
        return _error(view, f"No trace {trace_id!r} on the server (expired?): run it again.", 404)
    attn = trace.capture.attn if trace.capture is not None else None
    if attn is None:
        return _error(view, "This trace was run without attention patterns.", 404)
    n_blocks, n_heads, n_tokens = attn.shape[0], attn.shape[1], attn.shape[2]
    end = min(n_tokens, start + MAX_TOKENS) if end is None else end
    try:
        if not start < end <= n_tokens:
            raise ValueError(f"positions {start}..{end} are not a range inside 0..{n_tokens}")
        if end - start > MAX_TOKENS:
            raise ValueError(
                f"bertviz is too slow past {MAX_TOKENS} tokens ({end - start} asked): "
                "choose a shorter token range"
            )
        blocks = _ints(layers, n_blocks, "layers") or list(range(n_blocks))
        head_list = _ints(heads, n_heads, "heads")
    except ValueError as exc:
        return _error(view, str(exc), 400)
    try:
        from bertviz import head_view, model_view
    except ImportError:
        return _error(view, "bertviz is not installed: pip install --no-deps bertviz", 503)

    # trace.attention is bertviz's own format: L tensors [1, H, T, T]
    attention = tuple(a[..., start:end, start:end].cpu() for a in trace.attention)
    tok = ctx.model.tokenizer
    tokens = [_token(tok.token_text(int(i))) for i in trace.capture.ids[start:end]]
    if view == "head":
        html = head_view(
            attention,
            tokens,
            layer=blocks[0],
            heads=head_list,
            include_layers=blocks,
            html_action="return",
        ).data
    else:
        html = model_view(
            attention,
            tokens,
            display_mode="light",
            include_layers=blocks,
            include_heads=head_list,
            html_action="return",
        ).data
    return _page(view, offline(html))
