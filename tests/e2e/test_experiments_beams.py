"""Beams and branches in Chromium on the real default model: beam search drawn as a tree, a beam
opened on the scrubber as an ordinary trace; a token of the trace swapped for another candidate
and regenerated, the branch kept in a list and opened; 1280 and 768 px wide, nothing fetched
from outside."""

from __future__ import annotations

import pytest
from harness import Page
from test_explorer import COMPLETE, TRACE, run_prompt

NO_PLACEHOLDER = "!document.querySelector('#view-beams .placeholder:not([hidden])')"


@pytest.mark.parametrize("width", [1280, 768])
def test_beams_and_branches(browser, live_server, width):
    p = Page(browser, width=width, height=1000)
    pg = p.page
    try:
        run_prompt(p, live_server.url, generate=4)
        pg.click("#tab-beams")
        pg.locator("#view-beams").wait_for(state="visible")
        desc = pg.locator("#view-beams .view-desc").inner_text()
        assert 40 < len(desc) < 220 and "\n" not in desc, desc
        assert pg.input_value("#beam-prompt") == "The capital of France is"

        pg.fill("#beam-width", "3")
        pg.fill("#beam-length", "5")
        pg.click("#beam-run")
        pg.wait_for_selector("#beam-list tbody tr", timeout=300_000)
        assert pg.locator("#beam-list tbody tr").count() == 3
        assert pg.locator("#beam-tree .node.leaf").count() == 3
        assert pg.locator("#beam-tree .node.kept").count() >= 5  # the best beam's 5 tokens
        first = pg.inner_text("#beam-list tbody tr >> nth=0")
        assert "Paris" in first, first
        assert pg.evaluate("document.documentElement.scrollWidth") <= width

        # branching: click the first generated token in the strip, pick another candidate
        n_prompt = pg.evaluate(f"{TRACE}.nPrompt")
        pg.click(f".tok[data-pos='{n_prompt}']")
        pg.wait_for_function(NO_PLACEHOLDER, timeout=60_000)
        pg.wait_for_selector("#branch-cands .cand", timeout=60_000)
        assert pg.locator("#branch-cands .cand").count() == 10
        assert pg.locator("#branch-cands .cand.now").count() == 1
        assert pg.locator(f"#branch-text .bt.sel[data-pos='{n_prompt}']").count() == 1
        other = pg.locator("#branch-cands .cand:not(.now)").first
        token = other.locator("code").inner_text()
        other.click()
        pg.wait_for_selector("#branch-list .branch", timeout=300_000)
        assert pg.text_content("#branch-list .branch mark") == token.replace("·", " ")
        pg.wait_for_timeout(300)
        p.shot(f"42-beams-{width}", full_page=True)

        # the branch opens as an ordinary trace of its ids: prefix, the chosen token, the rest
        pg.click("#branch-list button[data-open='0']")
        pg.wait_for_function(
            f"{COMPLETE} && {TRACE}.nPrompt === {TRACE}.ids.length && {TRACE}.ids.length > "
            f"{n_prompt + 1}",
            timeout=300_000,
        )
        chip = pg.inner_text(f".tok[data-pos='{n_prompt}'] .in")
        assert chip == token

        # a beam opens as an ordinary trace too
        beam = pg.evaluate("document.querySelector('#beam-list tbody tr').innerText")
        pg.click("#beam-tree .node.leaf[data-beam='0']")
        pg.wait_for_function(
            f"{COMPLETE} && {TRACE}.ids.length === {n_prompt + 5} && {TRACE}.nPrompt === "
            f"{TRACE}.ids.length",
            timeout=300_000,
        )
        del beam
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()
