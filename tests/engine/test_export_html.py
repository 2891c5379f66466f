"""The HTML export: one self-contained page (nothing fetched), the trace document inside it, a
bounded size, and show() in a notebook (or a clear error without IPython)."""

from __future__ import annotations

import builtins
import html
import json
import re
import sys

import pytest

from layerscope.engine.export import html as export
from layerscope.engine.trace import run_trace
from layerscope.engine.trace_file import to_document
from layerscope.errors import LayerscopeError, MissingPackageError
from tiny import tiny_model

EMBED = re.compile(r'<script type="application/json" id="layerscope-trace">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def trace():
    if missing := [
        n for n in ("app", "plotly") if not (export.WEB_DIR / export.ASSETS[n]).is_file()
    ]:
        pytest.fail(f"web bundle missing ({', '.join(missing)}): run `make web`")
    model = tiny_model("llama")
    return run_trace(model.lens_model, "The capital of France is", generate=4)


@pytest.fixture(scope="module")
def page(trace, tmp_path_factory):
    path = export.save_html(trace, tmp_path_factory.mktemp("html") / "trace.html")
    return path.read_text(encoding="utf-8")


def test_page_is_self_contained(page):
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""\b(src|href)\s*=\s*["']?(?!data:|#)""", page[: page.index("<script")])
    for tag in re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page):  # the page's own tags
        assert not re.search(r"\b(src|href)\s*=", tag), tag
    assert 'src="http' not in page and "<link" not in page
    assert "/static/js/main.js" not in page and "cdn" not in page.lower().split("<script")[0]
    head = page[: page.index("<script")]
    assert "<style>\n" in head and "</style>" in head and 'type="module"' in page


def test_page_embeds_the_document(page, trace):
    embedded = EMBED.findall(page)
    assert len(embedded) == 1
    doc = json.loads(embedded[0])
    want = to_document(trace)
    want["extras"] = {}
    assert doc == want  # exactly the trace file's document, extras left out


def test_scripts_cannot_end_early():
    assert export.script_safe('a="</script>";b="<!--"') == 'a="<\\/script>";b="<\\!--"'
    doc = {"token_text": {"1": "</script><script>alert(1)</script>"}}
    out = export.page_html(doc)
    assert json.loads(EMBED.search(out).group(1)) == doc


def test_size_is_bounded(page):
    # Plotly's cartesian build (~1.5 MB) + the bundle (~0.1 MB) + a small trace
    assert len(page.encode()) < 2_000_000


def test_missing_bundle_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(export, "WEB_DIR", tmp_path)
    with pytest.raises(LayerscopeError, match="make web"):
        export.page_html({})


def test_show_displays_an_iframe(trace, monkeypatch):
    ipython = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setattr(ipython, "display", lambda obj: shown.append(obj))
    assert export.show(trace) is None
    (out,) = shown
    assert isinstance(out, ipython.HTML)
    frame = out.data
    assert frame.count("<iframe srcdoc=") == 1 and "width:100%" in frame
    inner = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert inner == export.trace_html(trace)  # the page as save_html writes it, isolated


def test_show_without_ipython_says_so(trace, monkeypatch):
    real = builtins.__import__

    def no_ipython(name, *args, **kwargs):
        if name.startswith("IPython"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "IPython.display", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ipython)
    with pytest.raises(MissingPackageError, match="IPython"):
        export.show(trace)
