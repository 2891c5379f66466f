"""Grouped navigation in Chromium: the tabs in four named groups (one tablist each), every tab
reachable by its id, keyboard movement (←/→ within a group, ↑/↓ between groups, Enter opens), and
a nav that fits 1280 and 768 px."""

from __future__ import annotations

import pytest
from harness import Page
from test_explorer import run_prompt

GROUPS = ["Lens", "Inside the model", "Experiments", "Learn"]


@pytest.mark.parametrize("width", [1280, 768])
def test_grouped_tabs_and_keyboard(browser, live_server, width):
    p = Page(browser, width=width, height=900)
    pg = p.page
    try:
        run_prompt(p, live_server.url, generate=0)
        labels = pg.eval_on_selector_all(
            ".nav-group .group-label", "els => els.map(e => e.textContent)"
        )
        assert labels == GROUPS
        groups = pg.eval_on_selector_all(
            ".nav-group",
            "els => els.map(g => [...g.querySelectorAll('[role=tab]')].map(t => t.id.slice(4)))",
        )
        by_label = dict(zip(labels, groups, strict=True))
        assert by_label["Lens"][0] == "heatmap"
        assert {"attention", "roles", "dataflow", "components"} <= set(by_label["Inside the model"])
        assert {"patching", "ablation", "steering", "beams"} <= set(by_label["Experiments"])
        # every tablist is named by its group, and has exactly one tab stop
        assert pg.locator("[role=tablist][aria-labelledby]").count() == len(GROUPS)
        stops = pg.eval_on_selector_all(
            "[role=tablist]", "ls => ls.map(l => l.querySelectorAll('[tabindex=\"0\"]').length)"
        )
        assert stops == [1] * len(GROUPS)
        # every tab is visible and opens its view by its id
        for ids in groups:
            for view in ids:
                assert pg.locator(f"#tab-{view}").is_visible(), view
        pg.click("#tab-ablation")
        assert pg.get_attribute("#tab-ablation", "aria-selected") == "true"
        assert "current" in pg.get_attribute(".nav-group:has(#tab-ablation)", "class")
        # keyboard: ← moves within the group, ↑ to the group above, Enter opens
        exp = by_label["Experiments"]
        i = exp.index("ablation")
        pg.focus("#tab-ablation")
        pg.keyboard.press("ArrowLeft")
        assert pg.evaluate("document.activeElement.id") == f"tab-{exp[i - 1]}"
        pg.keyboard.press("ArrowRight")
        pg.keyboard.press("ArrowRight")
        assert pg.evaluate("document.activeElement.id") == f"tab-{exp[(i + 1) % len(exp)]}"
        pg.keyboard.press("ArrowUp")
        focused = pg.evaluate("document.activeElement.id").removeprefix("tab-")
        assert focused in by_label["Inside the model"]
        pg.keyboard.press("Enter")
        assert pg.get_attribute(f"#tab-{focused}", "aria-selected") == "true"
        assert pg.locator(f"#view-{focused}").is_visible()
        pg.keyboard.press("End")
        assert pg.evaluate("document.activeElement.id") == f"tab-{by_label['Inside the model'][-1]}"
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        p.shot(f"43-nav-{width}", element=".nav-groups")
        assert not p.errors, p.errors
        assert not p.foreign, p.foreign
    finally:
        p.close()
