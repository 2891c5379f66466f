"""The Component patching view in a browser on the real default model: the residual, attention,
MLP and head grids of restored fractions, and a click on a head cell or an MLP cell opening that
patched run in the scrubber (the same Patch the engine's ``cell_patch`` builds); 1280 and 768 px."""

from __future__ import annotations

import pytest
from harness import Page
from test_explorer import COMPLETE, TRACE, click_plot_cell, run_prompt

from layerscope.engine.analyses.component_patching import component_patch

PANELS = ("#cp-resid", "#cp-attn", "#cp-mlp", "#cp-heads")


def opened(pg) -> dict:
    """Wait for the patched run to finish on screen; its one intervention."""
    pg.wait_for_function(f"{COMPLETE} && {TRACE}.interventions.length === 1", timeout=120_000)
    return pg.evaluate(f"{TRACE}.interventions[0]")


@pytest.mark.parametrize("width", [1280, 768])
def test_component_patching(browser, live_server, real_model, width):
    p = Page(browser, width=width, height=900)
    pg = p.page
    info = real_model.info
    try:
        run_prompt(p, live_server.url, prompt="The capital of France is", generate=0)
        pg.click("#tab-componentpatching")
        desc = pg.locator("#view-componentpatching .view-desc").inner_text()
        assert 40 < len(desc) < 220 and "\n" not in desc, desc
        assert pg.locator("#view-componentpatching .cp-which label[data-term]").count() == 4
        pg.fill("#cp-clean", "The capital of France is")  # short prompts: every cell is a run
        pg.fill("#cp-corrupted", "The capital of Italy is")
        pg.click("#cp-run")
        for sel in PANELS:
            pg.wait_for_selector(f"{sel} .main-svg", timeout=240_000)
        pg.wait_for_function("!document.querySelector('#cp-run').disabled", timeout=30_000)
        pg.wait_for_timeout(300)
        summary = pg.inner_text("#cp-summary")
        assert "on the clean prompt" in summary and "on the corrupted one" in summary
        # grid shapes: resid (L+1) x T, attn/mlp L x T, heads L x H
        T = len(pg.evaluate("document.querySelector('#cp-resid').data[0].x"))
        shape = "(el) => [el.data[0].z.length, el.data[0].z[0].length]"
        assert pg.eval_on_selector("#cp-resid", shape) == [info.n_lens_layers, T]
        assert pg.eval_on_selector("#cp-attn", shape) == [info.n_blocks, T]
        assert pg.eval_on_selector("#cp-mlp", shape) == [info.n_blocks, T]
        assert pg.eval_on_selector("#cp-heads", shape) == [info.n_blocks, info.n_heads]
        # the last layer of the residual at the last position restores everything
        last = pg.eval_on_selector("#cp-resid", "el => el.data[0].z.at(-1).at(-1)")
        assert last == pytest.approx(1.0, abs=1e-3)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"42-component-patching-{width}", element=".views-card")

        clean = pg.evaluate("window.layerscope && document.querySelector('#cp-clean').value")
        clean_ids = real_model.tokenizer.encode(clean)
        # a head cell: that head's output at every position, from the clean run
        click_plot_cell(p, "#cp-heads", 9, 4)
        iv = opened(pg)
        want = component_patch("head_out", 9, 4, clean_ids).model_dump(mode="json")
        assert iv == want
        assert "heads 4" in pg.inner_text(".banner")
        pg.click(".banner button")
        pg.wait_for_function(f"{TRACE}.interventions.length === 0")

        # an MLP cell: one block's MLP output at one position
        pg.click("#tab-componentpatching")
        click_plot_cell(p, "#cp-mlp", 2, T - 1)
        iv = opened(pg)
        assert iv == component_patch("mlp_out", 2, T - 1, clean_ids).model_dump(mode="json")
        p.shot(f"43-component-patch-opened-{width}")
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()
