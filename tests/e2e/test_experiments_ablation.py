"""The Ablation view in Chromium on the real default model: turn off head 23.4 and watch
p(" Paris") fall from 0.773 to 0.141; the ablated run on the scrubber next to the clean one, the
per-cell difference, heads chosen by role, mean ablation over a reference text, Reset; 1280 and
768 px wide, nothing fetched from outside."""

from __future__ import annotations

import pytest
from harness import Page
from test_explorer import COMPLETE, TRACE, run_prompt

NO_PLACEHOLDER = "!document.querySelector('#view-{v} .placeholder:not([hidden])')"
ABLATED = (
    f"{COMPLETE} && {TRACE}.interventions.length === 1"
    " && !document.querySelector('#abl-result').hidden"
)


def pressed(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "#abl-grid .abl-cell.on",
        "els => els.map(e => e.dataset.h ? `${e.dataset.b}.${e.dataset.h}`"
        " : `${e.dataset.k}${e.dataset.b}`)",
    )


@pytest.mark.parametrize("width", [1280, 768])
def test_ablate_a_head(browser, live_server, real_model, width):
    p = Page(browser, width=width, height=1000)
    pg = p.page
    info = real_model.info
    try:
        run_prompt(p, live_server.url, generate=4)
        pg.click("#tab-ablation")
        pg.locator("#view-ablation").wait_for(state="visible")
        desc = pg.locator("#view-ablation .view-desc").inner_text()
        assert 40 < len(desc) < 220 and "\n" not in desc, desc
        assert pg.get_attribute("#tab-ablation", "aria-selected") == "true"
        # one button per head, and per block one for its attention, its MLP and the whole block
        cells = pg.locator("#abl-grid .abl-cell").count()
        assert cells == info.n_blocks * info.n_heads + 3 * info.n_blocks
        assert pg.locator("#abl-grid .abl-lbl[data-term]").count() == 3  # attn, MLP, block
        assert pg.locator("#abl-grid button:not([data-term])").count() == 0  # glossary tooltips

        pg.click("#abl-suggest")  # head 23.4
        assert pressed(pg) == ["23.4"]
        assert pg.inner_text("#abl-summary") == "Turning off 1 head."
        pg.click("#abl-run")
        pg.wait_for_function(ABLATED, timeout=300_000)
        iv = pg.evaluate(f"{TRACE}.interventions[0]")
        assert iv["kind"] == "ablate" and iv["heads"] == [[23, 4]] and iv["mode"] == "zero"
        effect = pg.inner_text("#abl-effect")
        assert (
            "·Paris" in effect
            and "0.773" in effect
            and "0.141" in effect
            and "−0.631" in effect
            and "−1.96" in effect
        )
        assert pg.inner_text("#abl-p-new") == "0.141"
        assert pg.locator(".banner").is_visible()  # the scrubber says it shows a variant
        pg.wait_for_selector("#abl-diff .main-svg", timeout=30_000)
        # the difference: layer 30 at the last prompt position is p(Paris) 0.141 - 0.773
        n_prompt = pg.evaluate(f"{TRACE}.nPrompt")
        z = pg.evaluate(f"document.querySelector('#abl-diff').data[0].z[30][{n_prompt - 1}]")
        assert z == pytest.approx(0.141 - 0.773, abs=2e-3)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        pg.wait_for_timeout(300)
        p.shot(f"40-ablation-{width}", full_page=True)

        # the scrubber shows the clean run, then the ablated one again
        pg.click("#abl-show-clean")
        pg.wait_for_function(f"{TRACE}.interventions.length === 0")
        assert pg.get_attribute("#abl-show-clean", "aria-pressed") == "true"
        pg.click("#abl-show-ablated")
        pg.wait_for_function(f"{TRACE}.interventions.length === 1")

        # Reset: the selection is cleared and the clean run is back on screen
        pg.click("#abl-reset")
        pg.wait_for_function(f"{TRACE}.interventions.length === 0")
        assert pressed(pg) == [] and pg.locator("#abl-result").is_hidden()
        pg.locator(".banner").wait_for(state="hidden")
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()


def test_heads_by_role_blocks_and_mean_ablation(page: Page, live_server):
    pg = page.page
    run_prompt(
        page, live_server.url, prompt="The cat sat on the mat. The cat sat on the", generate=0
    )
    pg.click("#tab-ablation")
    pg.locator("#view-ablation").wait_for(state="visible")
    # every head whose previous-token score on this prompt reaches 0.4
    pg.select_option("#abl-role", "previous_token")
    pg.fill("#abl-thr", "0.4")
    pg.click("#abl-role-add")
    pg.wait_for_function("document.querySelector('#abl-role-note').textContent.includes('score')")
    note = pg.inner_text("#abl-role-note")
    n = int(note.split()[0])
    assert n >= 1 and len(pressed(pg)) == n, note
    # a block number selects all its heads; the MLP row and the whole-block row add components
    pg.click("#abl-grid .abl-col[data-b='2']")
    assert {f"2.{h}" for h in range(9)} <= set(pressed(pg))
    pg.click("#abl-grid .abl-cell[data-b='5'][data-k='mlps']")
    pg.click("#abl-grid .abl-cell[data-b='7'][data-k='layers']")
    assert "1 MLP, 1 block" in pg.inner_text("#abl-summary")
    pg.select_option("#abl-mode", "mean")
    pg.check("input[name=abl-mean][value=text]")
    pg.click("#abl-run")
    pg.wait_for_function(ABLATED, timeout=300_000)
    iv = pg.evaluate(f"{TRACE}.interventions[0]")
    assert (
        iv["mode"] == "mean" and iv["reference_ids"] and iv["mlps"] == [5] and iv["layers"] == [7]
    )
    assert len(iv["heads"]) == len(pressed(pg)) - 2
    # keyboard: arrows move between grid cells, Enter/Space toggles
    pg.focus("#abl-grid .abl-col[data-b='0']")
    pg.keyboard.press("ArrowDown")
    pg.keyboard.press("ArrowRight")
    pg.keyboard.press("Space")
    assert "1.0" in pressed(pg)
    assert not page.errors, page.errors
