"""The data-flow and components views in Chromium on the real default model: the pipeline's numbers,
a stage opening its component panel, the sub-layer scrubber (2L + 1 stops and back), PNG/SVG export
buttons on every figure, 1280 and 768 px wide, and no request leaving the machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Page
from test_explorer import TRACE, layer_shown, outs, run_prompt

NO_PLACEHOLDER = "!document.querySelector('#view-{v} .placeholder:not([hidden])')"


def open_view(p: Page, view: str) -> None:
    p.page.click(f"#tab-{view}")
    p.page.locator(f"#view-{view}").wait_for(state="visible")
    p.page.wait_for_function(NO_PLACEHOLDER.format(v=view), timeout=60_000)
    p.page.wait_for_timeout(300)


def save_buttons(p: Page, plot: str) -> list[str]:
    return p.page.eval_on_selector_all(
        f"{plot} .modebar-btn", "els => els.map(e => e.getAttribute('data-title'))"
    )


@pytest.mark.parametrize("width", [1280, 768])
def test_data_flow_and_components(browser, live_server, width):
    p = Page(browser, width=width, height=1000)
    pg = p.page
    try:
        run_prompt(p, live_server.url)
        n_blocks = pg.evaluate("window.layerscope.store.current.nLayers") - 1
        open_view(p, "dataflow")
        desc = pg.locator("#view-dataflow .view-desc").inner_text()
        assert 40 < len(desc) < 220 and "\n" not in desc
        pg.wait_for_selector("#flow-plot .main-svg")
        # embed + 2 sub-layers per block + final norm, each with real numbers
        stages = pg.locator("#flow-path .flow-stage:not(.head)")
        assert stages.count() == 2 * n_blocks + 2
        row = pg.locator("#flow-path .flow-stage.attn").nth(3)
        cells = row.locator("span").all_inner_texts()
        assert cells[0] == "b3·attn"
        assert float(cells[1]) > 0 and -1 <= float(cells[2]) <= 1  # ‖Δ‖, cos
        assert "%" in pg.locator("#flow-path .flow-stage.final").inner_text()
        assert "·Paris" in pg.locator("#flow-path .flow-stage.final").inner_text()
        assert save_buttons(p, "#flow-plot") == ["Download PNG", "Download SVG"]
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"20-dataflow-{width}", element=".views-card")

        # an SVG really downloads, offline
        if width == 1280:
            pg.hover("#flow-plot")
            with pg.expect_download() as dl:
                pg.click("#flow-plot .modebar-btn[data-title='Download SVG']")
            assert dl.value.suggested_filename.endswith(".svg")
            assert "<svg" in Path(dl.value.path()).read_text()[:200]

        # clicking a stage opens its component: the attention of block 3
        row.click()
        pg.locator("#view-components").wait_for(state="visible")
        pg.wait_for_function(NO_PLACEHOLDER.format(v="components"), timeout=60_000)
        pg.wait_for_selector("#comp-pattern .main-svg")
        assert pg.get_attribute("#tab-components", "aria-selected") == "true"
        assert pg.input_value("#comp-kind") == "attn" and pg.input_value("#comp-block") == "3"
        assert pg.locator("#comp-roles tbody tr").count() == p.hello["model"]["n_heads"]
        assert save_buttons(p, "#comp-pattern") == ["Download PNG", "Download SVG"]
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        pg.wait_for_timeout(300)
        p.shot(f"21-components-attn-{width}", element=".views-card")

        # an MLP stage: its top neurons, with promoted and suppressed tokens
        open_view(p, "dataflow")
        pg.locator("#flow-path .flow-stage.mlp").nth(20).click()
        pg.wait_for_function(NO_PLACEHOLDER.format(v="components"), timeout=60_000)
        pg.wait_for_selector("#comp-neurons tbody tr")
        assert pg.input_value("#comp-kind") == "mlp" and pg.input_value("#comp-block") == "20"
        assert pg.locator("#comp-neurons tbody tr").count() == 10
        assert pg.locator("#comp-neurons tbody tr").first.locator("code").count() == 10
        assert save_buttons(p, "#comp-neuron-plot") == ["Download PNG", "Download SVG"]
        pg.wait_for_timeout(300)
        p.shot(f"22-components-mlp-{width}", element=".views-card")
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()


def test_sublayer_scrubber(page: Page, live_server):
    pg = page.page
    run_prompt(page, live_server.url)
    n_layers = pg.evaluate(f"{TRACE}.nLayers")
    normal = outs(page)
    assert layer_shown(page) == n_layers - 1
    pg.click("#sublayer-toggle")
    pg.wait_for_function(
        "document.querySelector('#sublayer-toggle').textContent.includes('on')", timeout=60_000
    )
    n_stops = 2 * (n_layers - 1) + 1
    value, top = pg.eval_on_selector("#layer-slider", "el => [+el.value, +el.max]")
    assert (value, top) == (n_stops - 1, n_stops - 1)  # the last layer is the last stop
    assert outs(page) == normal  # the last stop is the model's output
    assert pg.inner_text(".layer-name") == f"h_{n_layers - 1}"
    pg.eval_on_selector(
        "#layer-slider", "el => { el.value = 25; el.dispatchEvent(new Event('input')); }"
    )
    assert pg.inner_text(".layer-name") == "b12·attn"
    assert pg.inner_text("#layer-num") == "25"
    pg.hover(f".tok[data-pos='{pg.evaluate(f'{TRACE}.nPrompt') - 1}']")
    assert "b12·attn predicts next" in pg.locator("#tooltip").inner_text()
    pg.mouse.move(0, 0)
    pg.click("#tokens")
    pg.keyboard.press("ArrowUp")
    assert pg.inner_text(".layer-name") == "h_13" and pg.inner_text("#layer-num") == "26"
    page.shot("23-sublayer-scrubber")
    # and back: the normal lens at the matching layer
    pg.click("#sublayer-toggle")
    pg.wait_for_function("!document.querySelector('#sublayer-toggle').textContent.includes('on')")
    assert layer_shown(page) == 13 and pg.inner_text(".layer-name") == "h_13"
    pg.keyboard.press("End")
    assert outs(page) == normal
    assert not page.errors, page.errors
