"""The explorer as a person uses it: run a prompt, scrub, hover, open every view, patch."""

from __future__ import annotations

import pytest
from harness import Page

PROMPT = "The capital of France is"
COMPLETE = "window.layerscope && window.layerscope.store.current?.complete"
TRACE = "window.layerscope.store.current"


def run_prompt(p: Page, url: str, prompt: str = PROMPT, generate: int = 6) -> None:
    pg = p.page
    pg.goto(url)
    pg.wait_for_selector("#run:not([disabled])", timeout=30_000)
    pg.fill("#prompt", prompt)
    pg.fill("input[x-model\\.number='generate']", str(generate))
    pg.click("#run")
    pg.wait_for_function(COMPLETE, timeout=120_000)
    pg.wait_for_timeout(300)


def layer_shown(p: Page) -> int:
    """The layer the readout names; the slider's thumb must sit at that layer too."""
    shown = int(p.page.inner_text("#layer-num"))
    value, top = p.page.eval_on_selector("#layer-slider", "el => [+el.value, +el.max]")
    assert (value, top) == (shown, p.page.evaluate(f"{TRACE}.nLayers") - 1)
    return shown


def outs(p: Page) -> list[tuple[str, str]]:
    """(text, class) of every chip's prediction."""
    return p.page.eval_on_selector_all(
        ".tok .out", "els => els.map(e => [e.textContent, e.className])"
    )


def click_plot_cell(p: Page, plot: str, row: int, col: int) -> None:
    """Click the heatmap cell (row, col) of the Plotly chart in ``plot``."""
    x, y = p.page.evaluate(
        """([sel, row, col]) => {
            const gd = document.querySelector(sel);
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const top = gd.getBoundingClientRect().top + window.scrollY;
            window.scrollTo(0, top + ya._offset + ya.l2p(row) - window.innerHeight / 2);
            const r = gd.getBoundingClientRect();
            return [r.left + xa._offset + xa.l2p(col), r.top + ya._offset + ya.l2p(row)];
        }""",
        [plot, row, col],
    )
    p.page.mouse.click(x, y)


def test_trace_scrub_hover_and_heatmap(page: Page, live_server):
    pg = page.page
    run_prompt(page, live_server.url)
    n_layers = pg.evaluate(f"{TRACE}.nLayers")
    assert layer_shown(page) == n_layers - 1
    # the trace's typed arrays are the statistics the server declared in hello, nothing else
    columns = pg.evaluate(
        f"Object.entries({TRACE}.columns).map(([n, c]) => [n, c.data.constructor.name])"
    )
    array = {"int32": "Int32Array", "float32": "Float32Array"}
    assert columns == [[s["name"], array[s["dtype"]]] for s in page.hello["statistics"]]
    final = outs(page)
    n_prompt = pg.evaluate(f"{TRACE}.nPrompt")
    assert final[n_prompt - 1][0] == "·Paris"  # spaces shown as faint dots
    assert all("same" in cls for _, cls in final)
    assert pg.locator(".tok.gen").count() >= 1
    page.shot("01-trace-final-layer", full_page=True)

    # slider: drag to the bottom -> the embedding layer, where most predictions differ
    pg.eval_on_selector(
        "#layer-slider", "el => { el.value = 0; el.dispatchEvent(new Event('input')); }"
    )
    assert layer_shown(page) == 0
    assert sum("changed" in cls for _, cls in outs(page)) > len(final) // 2
    # keyboard and wheel scrub too
    pg.click("#tokens")
    pg.keyboard.press("ArrowUp")
    pg.keyboard.press("ArrowUp")
    assert layer_shown(page) == 2
    box = pg.locator("#tokens").bounding_box()
    pg.mouse.move(box["x"] + 5, box["y"] + 5)
    pg.mouse.wheel(0, -500)
    pg.wait_for_timeout(200)
    assert layer_shown(page) > 2
    pg.keyboard.press("Home")
    for _ in range(14):
        pg.keyboard.press("ArrowUp")
    assert layer_shown(page) == 14

    # hover: top-3 at this layer, neighbours, final and lock-in
    pg.hover(f".tok[data-pos='{n_prompt - 1}']")
    tip = pg.locator("#tooltip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert "Layer 14 predicts next" in text and "layer 13" in text and "locks in at layer" in text
    assert tip.locator("tr").count() == 3
    page.shot("02-scrubbed-layer14-hover")

    # heatmap: click a cell -> scrubber jumps there and selects the token
    pg.mouse.move(0, 0)
    click_plot_cell(page, "#heatmap", row=20, col=1)
    pg.wait_for_function("document.querySelector('#layer-num').textContent === '20'")
    assert layer_shown(page) == 20
    assert pg.locator(".tok.sel").get_attribute("data-pos") == "1"
    pg.select_option("#metric", "final_rank")
    pg.wait_for_timeout(300)
    page.shot("03-heatmap-rank", full_page=True)
    assert not page.errors, page.errors


def test_views_heads_and_trajectory(page: Page, live_server):
    pg = page.page
    run_prompt(page, live_server.url)
    pg.click("#tab-heads")
    pg.wait_for_selector("#heads .main-svg", timeout=60_000)
    pg.wait_for_timeout(300)
    title = pg.text_content("#heads .gtitle") or ""
    assert "Paris" in title
    page.shot("04-per-head-lens", full_page=True)

    pg.click(".tok[data-pos='2']", modifiers=["Shift"])
    pg.click("#tab-trajectory")
    pg.wait_for_selector("#trajectory .main-svg", timeout=60_000)
    pg.wait_for_function(
        "document.querySelector('#trajectory')._fullData?.length === 3"
    )  # two positions + the current-layer markers
    pg.evaluate("window.layerscope.setLayer(10)")
    pg.wait_for_timeout(300)
    assert pg.evaluate("document.querySelector('#trajectory')._fullData[2].text[0]") == "h10"
    page.shot("05-trajectory", full_page=True)
    assert not page.errors, page.errors


def test_patching_and_opening_a_patched_run(page: Page, live_server):
    pg = page.page
    run_prompt(page, live_server.url, generate=0)
    pg.click("#tab-patching")
    pg.fill("#patch-clean", "The capital of France is")
    pg.fill("#patch-corrupted", "The capital of Italy is")
    pg.click("#patch-run")
    pg.wait_for_selector("#patch .main-svg", timeout=120_000)
    assert "Paris" in pg.inner_text(".patch-summary")
    pg.wait_for_timeout(300)
    page.shot("06-patching", full_page=True)
    # patching the differing token (position 3) at layer 0 restores the clean answer
    click_plot_cell(page, "#patch", row=0, col=3)
    pg.wait_for_selector(".banner", state="visible")
    pg.wait_for_function(COMPLETE + " && window.layerscope.store.variant")
    banner = pg.inner_text(".banner")
    assert "layer 0 at position 3" in banner and "·France in place of ·Italy" in banner
    assert layer_shown(page) == pg.evaluate(f"{TRACE}.nLayers") - 1
    final = outs(page)
    assert final[-1][0] == "·Paris"
    page.shot("07-patched-run")
    pg.evaluate("window.layerscope.setLayer(7)")
    pg.click(".banner button")
    pg.wait_for_selector(".banner", state="hidden")
    assert not pg.evaluate("window.layerscope.store.variant")
    assert layer_shown(page) == 7
    assert pg.inner_text(".tok[data-pos='3'] .in") == "·France"
    assert not page.errors, page.errors


def test_early_exit(page: Page, live_server):
    pg = page.page
    run_prompt(page, live_server.url, generate=0)
    pg.click("#tab-early")
    pg.fill("#early-layer", "12")
    pg.click("#early-run")
    pg.wait_for_selector("#early-text", timeout=120_000)
    assert "First 12 of 30 blocks" in pg.inner_text("#early")
    page.shot("08-early-exit", full_page=True)
    assert not page.errors, page.errors


def test_bad_input_shows_an_error_and_the_server_stays_healthy(page: Page, live_server):
    pg = page.page
    pg.goto(live_server.url)
    pg.wait_for_selector("#run:not([disabled])", timeout=30_000)
    pg.fill("#prompt", "   ")
    assert pg.locator("#run").is_disabled()
    pg.fill("#prompt", "hello")
    gen = "input[x-model\\.number='generate']"
    pg.fill(gen, "-5")
    pg.click("#run")  # the browser refuses the form: the field is marked invalid
    assert pg.eval_on_selector(gen, "el => el.matches(':invalid')")
    assert pg.evaluate(TRACE) is None
    pg.fill(gen, "0")
    pg.click("#run")
    pg.wait_for_function(COMPLETE, timeout=60_000)
    pg.click("#tab-patching")
    pg.fill("#patch-clean", "The capital of France is")
    pg.fill("#patch-corrupted", "The capital of the United Kingdom is")
    pg.click("#patch-run")
    err = pg.locator(".notice.error")
    err.wait_for(state="visible", timeout=60_000)
    assert "same number of tokens" in err.inner_text()
    page.shot("09-error")
    assert pg.evaluate("fetch('/api/health').then(r => r.json())")["status"] == "ok"


VIEWS = ["heatmap", "heads", "trajectory", "patching", "early"]


@pytest.mark.parametrize("width", [1280, 768])
def test_every_view_opens_with_its_description(browser, live_server, width):
    p = Page(browser, width=width, height=900)
    pg = p.page
    try:
        run_prompt(p, live_server.url)
        tabs = pg.eval_on_selector_all(".tab", "els => els.map(e => e.id.slice(4))")
        assert [t for t in tabs if t in VIEWS] == VIEWS  # later views have their own tests
        for view in VIEWS:
            pg.click(f"#tab-{view}")
            panel = pg.locator(f"#view-{view}")
            panel.wait_for(state="visible")
            assert pg.locator(".view:visible").count() == 1
            assert pg.get_attribute(f"#tab-{view}", "aria-selected") == "true"
            desc = panel.locator(".view-desc").inner_text()
            assert 40 < len(desc) < 220 and "\n" not in desc, desc  # one plain line
            pg.wait_for_function(  # its answer has arrived (no "Computing…" left)
                f"!document.querySelector('#view-{view} .placeholder:not([hidden])')",
                timeout=60_000,
            )
            pg.wait_for_timeout(300)
            assert pg.evaluate("document.documentElement.scrollWidth") <= width
            p.shot(f"11-view-{view}-{width}", element=".views-card")
        assert layer_shown(p) == pg.evaluate(f"{TRACE}.nLayers") - 1
        assert not p.errors, p.errors
        assert not p.foreign
    finally:
        p.close()


@pytest.mark.parametrize("width", [768])
def test_narrow_window(browser, live_server, width):
    p = Page(browser, width=width, height=1000)
    try:
        run_prompt(p, live_server.url, prompt="Once upon a time, in a small village,", generate=24)
        overflow = p.page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width
        p.shot(f"10-narrow-{width}", full_page=True)
        assert not p.foreign
    finally:
        p.close()
