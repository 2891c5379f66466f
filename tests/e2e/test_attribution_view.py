"""The Attribution view in a browser on the real default model: integrated gradients of the trace
on screen (the completeness check stated, a warning when it fails), a typed target, and clean vs
ablated strips for a run with interventions; at 1280 and 768 px."""

from __future__ import annotations

import pytest
from harness import Page
from test_explorer import COMPLETE, TRACE, run_prompt

VIEW = "#view-attribution"


def attribute(pg) -> None:
    pg.click("#attr-run")
    pg.wait_for_function("!document.querySelector('#attr-run').disabled", timeout=180_000)
    pg.wait_for_timeout(200)


@pytest.mark.parametrize("width", [1280, 768])
def test_attribution(browser, live_server, width):
    p = Page(browser, width=width, height=900)
    pg = p.page
    try:
        run_prompt(p, live_server.url, prompt="The capital of France is", generate=0)
        pg.click("#tab-attribution")
        desc = pg.locator(f"{VIEW} .view-desc").inner_text()
        assert 40 < len(desc) < 220 and "\n" not in desc, desc
        for sel in ("#attr-method", "#attr-steps", "#attr-pick"):  # every control names its term
            assert pg.locator(sel).locator("xpath=ancestor::label[@data-term]").count() == 1
        assert not pg.is_visible("#attr-under")  # a plain run: nothing to attribute under
        # the candidates are the final layer's top predictions after the last prompt token
        assert "Paris" in pg.locator("#attr-pick option").first.inner_text()

        attribute(pg)
        T = pg.evaluate(f"{TRACE}.nPrompt")
        chips = pg.locator("#attr-strips .attr-row").first.locator(".attr-tok")
        assert chips.count() == T
        summary = pg.inner_text("#attr-summary")
        assert "Paris" in summary and "integrated gradients" in summary and "64 steps" in summary
        assert "Baseline:" in pg.inner_text("#attr-baseline")
        check = pg.locator("#attr-check .attr-check-row")
        assert check.count() == 1
        assert "f(input) − f(baseline)" in check.inner_text()
        assert "ok" in check.get_attribute("class"), check.inner_text()  # 64 steps converge
        title = chips.nth(T - 1).get_attribute("title")
        assert title.startswith(f"position {T - 1}") and ("+" in title or "−" in title)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"40-attribution-{width}", element=".views-card")

        # one step: the completeness check fails visibly
        pg.fill("#attr-steps", "1")
        attribute(pg)
        warn = pg.locator("#attr-check .attr-check-row.warn")
        assert warn.count() == 1 and "more than 5 %" in warn.inner_text()

        # a typed target of one token, and one of two tokens refused with a clear error
        pg.fill("#attr-steps", "32")
        pg.fill("#attr-target", " Rome")
        attribute(pg)
        assert "Rome" in pg.inner_text("#attr-summary")
        pg.fill("#attr-target", " Paris France")
        attribute(pg)
        assert "single token" in pg.inner_text(".notice.error")
        pg.click(".notice.error button")
        pg.fill("#attr-target", "")

        # a run with an intervention on screen: clean vs ablated strips and their change
        ids = pg.evaluate(f"{TRACE}.ids")
        pg.evaluate(
            """async (ids) => {
                const v = (await import('/static/js/views/attribution.js')).default;
                v.ctx.run({ type: 'trace', ids, lens_top_k: 5, interventions: [{ kind: 'ablate',
                  point: 'mlp_out', block: 0, mode: 'zero' }] });
            }""",
            ids,
        )
        pg.wait_for_function(f"{COMPLETE} && {TRACE}.interventions.length === 1", timeout=120_000)
        pg.click("#tab-attribution")
        assert pg.is_checked("#attr-under")
        attribute(pg)
        rows = pg.locator("#attr-strips .attr-row")
        assert rows.count() == 3
        names = rows.locator(".attr-name").all_inner_texts()
        assert "clean run" in names[0] and "with interventions" in names[1]
        assert "change" in names[2]
        assert pg.locator("#attr-check .attr-check-row").count() == 2
        assert "Interventions:" in pg.inner_text("#attr-strips")
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"41-attribution-ablated-{width}", element=".views-card")
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()
