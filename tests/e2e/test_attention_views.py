"""The attention side in a browser on the real default model: the Attention view (pattern +
per-head grid, click to open a head), Head roles (+ the induction probe), and bertviz's head and
model views rendering inside their iframe, offline; at 1280 and 768 px, and on a 512-token input."""

from __future__ import annotations

import time

import pytest
from harness import Page
from test_explorer import COMPLETE, TRACE, click_plot_cell, outs, run_prompt

PROMPT = "The cat sat on the mat. The dog sat on the log. The cat sat on the"


def bertviz_svg(pg, selector: str, minimum: int, timeout: float = 60.0) -> int:
    """How many ``selector`` elements bertviz drew inside its iframe (waits for ``minimum``)."""
    frame = pg.frame_locator("#bv-frame")
    deadline = time.monotonic() + timeout
    while True:
        n = frame.locator(selector).count()
        if n >= minimum or time.monotonic() > deadline:
            return n
        pg.wait_for_timeout(250)


def settled(pg, view: str) -> None:
    pg.wait_for_function(
        f"!document.querySelector('#view-{view} .placeholder:not([hidden])')", timeout=120_000
    )
    pg.wait_for_timeout(300)


@pytest.mark.parametrize("width", [1280, 768])
def test_attention_head_roles_and_bertviz(browser, live_server, real_model, width):
    p = Page(browser, width=width, height=900)
    pg = p.page
    info = real_model.info
    try:
        run_prompt(p, live_server.url, prompt=PROMPT, generate=3)
        T = pg.evaluate(f"{TRACE}.ids.length")
        for view in ("attention", "roles", "bertviz"):
            desc = pg.locator(f"#view-{view} .view-desc").inner_text()
            assert 40 < len(desc) < 220 and "\n" not in desc, desc

        # Attention: the pattern with token labels, the grid; a grid click opens that head
        pg.click("#tab-attention")
        pg.wait_for_selector("#attn-pattern .main-svg", timeout=60_000)
        pg.wait_for_selector("#attn-grid .main-svg", timeout=60_000)
        settled(pg, "attention")
        assert "Block 0 · head 0" in pg.text_content("#attn-pattern .gtitle")
        ticks = pg.eval_on_selector_all("#attn-pattern .xtick text", "els => els.length")
        assert ticks == T  # every key labelled (a short input)
        assert pg.locator("#attn-pattern .xtick text").first.text_content().startswith("0:")
        click_plot_cell(p, "#attn-grid", 3, 2)
        pg.wait_for_function(
            "document.querySelector('#attn-pattern .gtitle')?.textContent"
            ".startsWith('Block 3 · head 2')",
            timeout=30_000,
        )
        assert pg.input_value("#attn-block") == "3" and pg.input_value("#attn-head") == "2"
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"30-attention-{width}", element=".views-card")

        # Head roles: scores grid, the stated thresholds, the roles; then the probe
        pg.click("#tab-roles")
        pg.wait_for_selector("#roles-grid .main-svg", timeout=60_000)
        settled(pg, "roles")
        roles = pg.inner_text("#roles-list")
        assert "score ≥ 0.4" in roles and "induction heads" in roles and "score ≥ 0.6" in roles
        pg.click("#probe-run")
        pg.wait_for_selector("#probe-text", timeout=120_000)
        pg.wait_for_selector("#probe-grid .main-svg", timeout=30_000)
        probe = pg.inner_text("#probe-text")
        assert "strongest induction heads" in probe and "median head scores" in probe
        pg.wait_for_timeout(300)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"31-head-roles-{width}", element=".views-card")
        # a click on a head opens it in the Attention view
        click_plot_cell(p, "#roles-grid", 5, 1)
        pg.wait_for_function(
            "document.querySelector('#attn-pattern .gtitle')?.textContent"
            ".startsWith('Block 5 · head 1')",
            timeout=30_000,
        )

        # bertviz, head view: one svg with a text per token on each side, from our server only
        pg.click("#tab-bertviz")
        pg.wait_for_selector("#bv-frame:not([hidden])", timeout=30_000)
        n_text = bertviz_svg(pg, "#vis svg text", 2 * T)
        assert n_text >= 2 * T, n_text
        assert "Layer" in pg.frame_locator("#bv-frame").locator("body").inner_text()
        pg.wait_for_timeout(800)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"32-bertviz-head-{width}", element=".views-card")
        # model view: one thumbnail per head of the chosen blocks
        pg.fill("#bv-layers", "0-2")
        pg.select_option("#bv-view", "model")
        n_svg = bertviz_svg(pg, "#vis svg [id^=attn_background_]", 3 * info.n_heads)
        assert n_svg >= 3 * info.n_heads, n_svg
        pg.wait_for_timeout(800)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"33-bertviz-model-{width}", element=".views-card")

        vendor = [u for u in p.requests if "/static/vendor/" in u]
        for name in ("require.js", "d3.min.js", "jquery.min.js"):
            assert any(u.endswith(name) for u in vendor), (name, vendor)
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()


def test_512_tokens_windowed_not_frozen(browser, live_server):
    p = Page(browser, width=1280, height=900)
    pg = p.page
    try:
        prompt = ("The quick brown fox jumps over the lazy dog. " * 51).strip()  # 510 tokens
        run_prompt(p, live_server.url, prompt=prompt, generate=2)
        pg.wait_for_function(COMPLETE, timeout=120_000)
        T = pg.evaluate(f"{TRACE}.ids.length")
        assert T == 512, T

        pg.click("#tab-attention")
        pg.wait_for_selector("#attn-pattern .main-svg", timeout=60_000)
        settled(pg, "attention")
        assert f"of {T} (attention to tokens before" in pg.inner_text("#attn-range")
        assert pg.input_value("#attn-window") == "128"
        # the whole 512 x 512 pattern: drawn, and the page still answers at once
        start = time.monotonic()
        pg.select_option("#attn-window", "512")
        pg.wait_for_function(
            "document.querySelector('#attn-range').textContent.startsWith('Showing tokens 0')"
            " || document.querySelector('#attn-range').textContent.startsWith('All')",
            timeout=60_000,
        )
        settled(pg, "attention")
        assert time.monotonic() - start < 30
        t0 = time.monotonic()
        pg.evaluate("1")
        assert time.monotonic() - t0 < 2
        p.shot("34-attention-512", element=".views-card")

        pg.click("#tab-bertviz")
        note = pg.inner_text("#bv-note")
        assert f"This input has {T} tokens" in note and "128" in note
        assert pg.input_value("#bv-start") == str(T - 128)
        n_text = bertviz_svg(pg, "#vis svg text", 256, timeout=90)
        assert n_text >= 256
        pg.fill("#bv-start", "0")
        pg.fill("#bv-end", str(T))
        pg.click("#bv-show")
        assert "Choose at most 128 tokens" in pg.inner_text("#bv-note")
        p.shot("35-bertviz-512", element=".views-card")

        # the data flow, its component panels and the sub-layer lens at 512 tokens
        pg.click("#tab-dataflow")
        pg.wait_for_selector("#flow-path .flow-stage.final", timeout=60_000)
        settled(pg, "dataflow")
        n_blocks = pg.evaluate(f"{TRACE}.nLayers") - 1
        assert pg.locator("#flow-path .flow-stage:not(.head)").count() == 2 * n_blocks + 2
        pg.locator("#flow-path .flow-stage.mlp").nth(n_blocks - 1).click()
        pg.wait_for_selector("#comp-neurons tbody tr", timeout=60_000)
        settled(pg, "components")
        assert pg.locator("#comp-neurons tbody tr").count() == 10
        t0 = time.monotonic()
        pg.evaluate("1")
        assert time.monotonic() - t0 < 2
        p.shot("36-dataflow-512", element=".views-card")
        start = time.monotonic()
        pg.click("#sublayer-toggle")
        pg.wait_for_function(
            "document.querySelector('#sublayer-toggle').textContent.includes('on')",
            timeout=90_000,
        )
        assert time.monotonic() - start < 60
        assert pg.eval_on_selector("#layer-slider", "el => +el.max") == 2 * n_blocks
        assert len(outs(p)) == T
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()
