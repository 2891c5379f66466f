"""The Compare prompts view in a browser on the real default model: two lens strips that follow
the scrubber, the per-layer cosine of the residual streams (last tokens and a clicked pair) with
the diverging layers marked, and one head's attention for both; prompts of different lengths;
1280 and 768 px."""

from __future__ import annotations

import pytest
from harness import Page
from test_explorer import run_prompt

VIEW = "#view-compare"


def compared(pg) -> None:
    pg.wait_for_function("!document.querySelector('#cmp-run').disabled", timeout=120_000)
    pg.wait_for_selector("#cmp-cos .main-svg", timeout=60_000)
    pg.wait_for_selector("#cmp-attn-a .main-svg", timeout=60_000)
    pg.wait_for_selector("#cmp-attn-b .main-svg", timeout=60_000)
    pg.wait_for_timeout(300)


def cosines(pg) -> dict:
    return pg.evaluate(
        "(() => { const d = document.querySelector('#cmp-cos').data;"
        " return {last: d[0].y, pair: d[1].y, pairName: d[1].name, diverge: d[2].x}; })()"
    )


@pytest.mark.parametrize("width", [1280, 768])
def test_compare_prompts(browser, live_server, real_model, width):
    p = Page(browser, width=width, height=900)
    pg = p.page
    L1 = real_model.info.n_lens_layers
    try:
        run_prompt(p, live_server.url, prompt="The capital of France is", generate=0)
        pg.click("#tab-compare")
        desc = pg.locator(f"{VIEW} .view-desc").inner_text()
        assert 40 < len(desc) < 220 and "\n" not in desc, desc
        pg.click("#cmp-run")
        compared(pg)
        tok = real_model.tokenizer
        Ta = len(tok.encode(pg.input_value("#cmp-a")))
        Tb = len(tok.encode(pg.input_value("#cmp-b")))
        assert pg.locator("#cmp-strip-a .cmp-tok").count() == Ta
        assert pg.locator("#cmp-strip-b .cmp-tok").count() == Tb
        c = cosines(pg)
        assert len(c["last"]) == L1 and c["last"] == c["pair"]  # default pair: the last tokens
        # France vs Italy: alike early, apart at the end (E2 measured ~0.86 at h_24)
        assert c["last"][1] > 0.95 and min(c["last"][-8:]) < 0.95
        assert c["diverge"] and all(c["last"][x] < 0.95 for x in c["diverge"])
        summary = pg.inner_text("#cmp-summary")
        assert "Final answers: A" in summary and "Paris" in summary and "Rome" in summary

        # the strips follow the scrubber
        pg.evaluate("window.layerscope.setLayer(3)")
        assert pg.inner_text("#cmp-layer") == "3"
        early = pg.locator("#cmp-strip-a .cmp-tok .out").all_inner_texts()
        pg.evaluate(f"window.layerscope.setLayer({L1 - 1})")
        final = pg.locator("#cmp-strip-a .cmp-tok .out").all_inner_texts()
        assert early != final and final[-1] == "·Paris"
        assert pg.locator("#cmp-strip-a .out.changed").count() == 0  # the final layer is final
        line = pg.evaluate("document.querySelector('#cmp-cos').layout.shapes.at(-1).x0")
        assert line == L1 - 1

        # a chosen pair: "France" (A) against "Italy" (B), both at position 3
        france = next(
            i
            for i, t in enumerate(pg.locator("#cmp-strip-a .in").all_inner_texts())
            if "France" in t
        )
        pg.locator("#cmp-strip-a .cmp-tok").nth(france).click()
        pg.wait_for_function(
            "document.querySelector('#cmp-cos').data[1].name.startsWith('pair "
            + str(france)
            + ":')",
            timeout=60_000,
        )
        pg.wait_for_function("document.querySelector('#cmp-status').textContent === ''")
        pg.locator("#cmp-strip-b .cmp-tok").nth(1).click()  # "capital": the same prefix in both
        pg.wait_for_function(
            "document.querySelector('#cmp-cos').data[1].name.endsWith('/ 1:·capital')",
            timeout=60_000,
        )
        pg.wait_for_function("document.querySelector('#cmp-status').textContent === ''")
        assert pg.locator("#cmp-strip-a .cmp-tok.sel").count() == 1
        pg.locator("#cmp-strip-a .cmp-tok").nth(1).click()
        pg.wait_for_function(
            "document.querySelector('#cmp-cos').data[1].name.startsWith('pair 1:')",
            timeout=60_000,
        )
        pg.wait_for_function("document.querySelector('#cmp-status').textContent === ''")
        c = cosines(pg)
        assert all(x > 0.999 for x in c["pair"])  # same tokens, same prefix: the same stream

        # attention: another head for both prompts
        pg.fill("#cmp-block", "5")
        pg.dispatch_event("#cmp-block", "change")
        pg.wait_for_function(
            "document.querySelector('#cmp-attn-b .gtitle')?.textContent === 'B · block 5 · head 0'",
            timeout=60_000,
        )
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"44-compare-{width}", element=".views-card")

        # prompts of different lengths
        pg.fill("#cmp-b", "Rome is a city in a country whose capital is")
        pg.click("#cmp-run")
        pg.wait_for_function(
            f"document.querySelectorAll('#cmp-strip-b .cmp-tok').length === "
            f"{len(tok.encode('Rome is a city in a country whose capital is'))}",
            timeout=120_000,
        )
        compared(pg)
        assert pg.locator("#cmp-strip-a .cmp-tok").count() == Ta
        assert len(cosines(pg)["last"]) == L1
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()
