"""The Steering view in Chromium on the real default model: Love − Hate (ActAdd) pushes "I hate
you because" towards love; steered and unsteered text side by side, the strength sweep with the
concept's probability, the steered run on the scrubber as an ordinary trace, CAA for several
lines; 1280 and 768 px wide, nothing fetched from outside."""

from __future__ import annotations

import pytest
from harness import Page
from test_explorer import COMPLETE, TRACE, run_prompt


@pytest.mark.parametrize("width", [1280, 768])
def test_steer_sweep_and_open_the_steered_run(browser, live_server, real_model, width):
    p = Page(browser, width=width, height=1000)
    pg = p.page
    try:
        run_prompt(p, live_server.url, generate=2)
        pg.click("#tab-steering")
        pg.locator("#view-steering").wait_for(state="visible")
        desc = pg.locator("#view-steering .view-desc").inner_text()
        assert 40 < len(desc) < 220 and "\n" not in desc, desc
        assert "ActAdd" in pg.inner_text("#steer-policy")
        pg.fill("#steer-n", "10")  # tokens per generation (the machine may be shared)

        pg.click("#steer-run")
        pg.wait_for_selector("#steer-steered", timeout=300_000)
        plain, steered = pg.inner_text("#steer-plain"), pg.inner_text("#steer-steered")
        assert plain.startswith("I hate you because") and steered.startswith("I hate you because")
        assert plain != steered
        depth = pg.inner_text("#steer-depth")
        n = real_model.info.n_blocks
        assert f"of {n}:" in depth and "% of the way in" in depth and "ActAdd" in depth

        # the sweep: -8 .. +8, strength 0 is the unsteered text, love rises with the strength
        pg.click("#steer-sweep")
        pg.wait_for_function(
            "document.querySelectorAll('#steer-table tbody tr').length === 7", timeout=400_000
        )
        rows = pg.eval_on_selector_all(
            "#steer-table tbody tr", "trs => trs.map(tr => [...tr.cells].map(c => c.innerText))"
        )
        assert [r[0] for r in rows] == ["-8", "-4", "-2", "0", "+2", "+4", "+8"]
        words = lambda s: " ".join(s.replace("↵", " ").split())  # noqa: E731
        assert words(plain).endswith(words(rows[3][1]))
        love = [float(r[2].rstrip("%").replace("<", "")) for r in rows]
        assert love[-1] > love[3] > love[0] and "love" in rows[-1][1]
        pg.wait_for_timeout(300)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"41-steering-{width}", full_page=True)

        # the steered run as an ordinary trace: a Steer intervention, the same text as the column
        pg.click("#steer-open")
        pg.wait_for_function(f"{COMPLETE} && {TRACE}.interventions.length === 1", timeout=300_000)
        iv = pg.evaluate(f"{TRACE}.interventions[0]")
        assert iv["kind"] == "steer" and iv["strength"] == 4 and iv["where"] == "aligned"
        assert len(iv["vector"][0]) == real_model.info.d_model
        chips = pg.eval_on_selector_all(".tok.gen .in", "els => els.map(e => e.textContent)")
        assert len(chips) == 10
        shown = "".join(chips).replace("·", " ").replace("↵", "\n")
        assert shown == steered.removeprefix("I hate you because")
        assert pg.locator(".banner").is_visible()
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()


def test_several_lines_make_a_caa_vector(page: Page, live_server):
    pg = page.page
    run_prompt(page, live_server.url, generate=0)
    pg.click("#tab-steering")
    pg.fill("#steer-pos", "I love this\nWhat a wonderful day")
    pg.fill("#steer-neg", "I hate this\nWhat a terrible day")
    assert "2 lines: CAA" in pg.inner_text("#steer-policy")
    pg.fill("#steer-n", "6")
    pg.click("#steer-open")
    pg.wait_for_function(f"{COMPLETE} && {TRACE}.interventions.length === 1", timeout=300_000)
    iv = pg.evaluate(f"{TRACE}.interventions[0]")
    assert iv["where"] == "generated" and isinstance(iv["vector"][0], float)
    assert "CAA" in pg.inner_text("#steer-depth")
    assert not page.errors, page.errors
