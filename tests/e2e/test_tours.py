"""Every guided tour, walked end to end in the browser on the real default model.

For each step the test does what the step asks of a person (click Run, move the scrubber, open a
tab, press a view's button), waits until the tour enables Next — the step's condition on the page
holds — and checks on the page that what the step says is there is there. Next must be disabled
before the person has done it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from harness import Page
from learn_helpers import open_learn, open_page, tours

TOURS = {t["id"]: t for t in tours()}
POPOVER = ".driver-popover.tour-popover"
NEXT = f"{POPOVER} .driver-popover-next-btn"
LAST = "window.layerscope.store.current"


def popover_at(pg, tour: str, step: int) -> None:
    pg.wait_for_selector(f"{POPOVER}[data-tour='{tour}'][data-step='{step}']", timeout=30_000)


def next_enabled(pg, timeout: int = 300_000) -> None:
    pg.wait_for_function(
        f"document.querySelector('{NEXT}') && !document.querySelector('{NEXT}').disabled",
        timeout=timeout,
    )


def slider(pg, key: str, times: int) -> None:
    pg.focus("#layer-slider")
    for _ in range(times):
        pg.keyboard.press(key)


def chip(pg, pos: int) -> str:
    return pg.inner_text(f".tok[data-pos='{pos}'] .out")


def tooltip_rows(pg, pos: int) -> str:
    pg.hover(f".tok[data-pos='{pos}']")
    pg.locator("#tooltip").wait_for(state="visible")
    pg.wait_for_timeout(400)  # as long as a person looks (the tour checks 4 times a second)
    return pg.inner_text("#tooltip")


def click_plot_cell(pg, plot: str, row: int, col: int) -> None:
    x, y = pg.evaluate(
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
    pg.mouse.click(x, y)


# what a person does at each step, and what the test then checks on the page: tour -> [action]
Step = Callable[[object], None] | None


def _fact(pg) -> list[Step]:
    def at29(pg):
        slider(pg, "ArrowDown", 1)
        pg.wait_for_function("document.querySelector('#layer-num').textContent === '29'")
        assert chip(pg, 4) == "·capital"
        tooltip_rows(pg, 4)
        rows = pg.eval_on_selector_all("#tooltip tr", "els => els.map(e => e.textContent)")
        assert "capital" in rows[0] and "Paris" in rows[2], rows  # third at h_29
        pg.mouse.move(0, 0)

    def at26(pg):
        slider(pg, "ArrowDown", 3)
        pg.wait_for_function("document.querySelector('#layer-num').textContent === '26'")
        assert "Paris" not in chip(pg, 4)

    def hover(pg):
        assert chip(pg, 4) == "·Paris"
        assert "77%" in tooltip_rows(pg, 4)
        pg.mouse.move(0, 0)

    return [
        lambda pg: pg.click("#run"),
        hover,
        at29,
        at26,
        lambda pg: pg.click("#tab-heatmap"),
        None,
    ]


def _lock_in(pg) -> list[Step]:
    def at27(pg):
        slider(pg, "ArrowDown", 3)
        pg.wait_for_function("document.querySelector('#layer-num').textContent === '27'")
        assert chip(pg, 9) == ","
        pg.mouse.move(0, 0)

    def at28(pg):
        slider(pg, "ArrowUp", 1)
        pg.wait_for_function("document.querySelector('#layer-num').textContent === '28'")
        assert chip(pg, 9) == "·Paris"
        assert "locks in at layer 28" in tooltip_rows(pg, 9)
        pg.mouse.move(0, 0)

    def gen(pg):
        assert pg.evaluate(f"{LAST}.lockIn[10]") == 13

    def hover(pg):
        assert chip(pg, 9) == "·Paris"
        assert "locks in at layer 28" in tooltip_rows(pg, 9)
        pg.mouse.move(0, 0)

    return [lambda pg: pg.click("#run"), hover, at27, at28, gen]


def _induction(pg) -> list[Step]:
    def summary(pg):
        assert "18.6 (0.45)" in pg.inner_text("#probe-summary")

    return [
        lambda pg: pg.click("#run"),
        lambda pg: pg.click("#tab-roles"),
        lambda pg: pg.click("#probe-run"),
        summary,
        None,
    ]


def _ablation(pg) -> list[Step]:
    def effect(pg):
        assert pg.inner_text("#abl-p-new") == "0.141"
        assert "0.773" in pg.inner_text("#abl-effect")
        assert pg.inner_text("#abl-top-new") == "·Paris"

    return [
        lambda pg: pg.click("#run"),
        lambda pg: pg.click("#tab-ablation"),
        lambda pg: pg.click("#abl-suggest"),
        lambda pg: pg.click("#abl-run"),
        effect,
    ]


def _patching(pg) -> list[Step]:
    def where(pg):
        text = pg.inner_text(".patch-summary")
        assert "77% on the clean prompt, <0.1% on the corrupted" in text, text
        restored = pg.evaluate("document.querySelector('#patch').data[0].z")
        assert all(restored[layer][3] > 0.95 for layer in range(24)) and restored[24][3] < 0.05
        assert all(restored[layer][4] > 0.95 for layer in range(24, 31)) and restored[23][4] < 0.05

    def cell(pg):
        click_plot_cell(pg, "#patch", 24, 4)
        pg.wait_for_function(f"{LAST}?.complete && {LAST}.interventions.length")
        assert chip(pg, 4) == "·Paris"

    return [
        lambda pg: pg.click("#run"),
        lambda pg: pg.click("#tab-patching"),
        lambda pg: pg.click("#patch-run"),
        where,
        cell,
    ]


def _steering(pg) -> list[Step]:
    def texts(pg):
        assert pg.inner_text("#steer-plain").startswith("I hate you because you're a woman.")
        assert pg.inner_text("#steer-steered").startswith(
            "I hate you because you are a hero.\n\nI'm so glad you're here."
        )

    return [
        lambda pg: pg.click("#run"),
        lambda pg: pg.click("#tab-steering"),
        lambda pg: pg.click("#steer-run"),
        texts,
    ]


def _compare(pg) -> list[Step]:
    def cos(pg):
        y = pg.evaluate("document.querySelector('#cmp-cos').data[0].y")
        assert min(y[:24]) >= 0.99 and abs(y[24] - 0.861) < 0.005, y

    return [
        lambda pg: pg.click("#run"),
        lambda pg: pg.click("#tab-compare"),
        lambda pg: pg.click("#cmp-run"),
        cos,
    ]


ACTIONS = {
    "fact-in-depth": _fact,
    "lock-in": _lock_in,
    "induction-head": _induction,
    "ablation": _ablation,
    "patching": _patching,
    "steering": _steering,
    "compare": _compare,
}


def walk(p: Page, tour_id: str, start_at: int = 0) -> None:
    """Walk tour `tour_id` from step `start_at` (already shown) to its end."""
    pg = p.page
    tour = TOURS[tour_id]
    actions = ACTIONS[tour_id](pg)
    assert len(actions) == len(tour["steps"])
    for i in range(start_at, len(tour["steps"])):
        popover_at(pg, tour_id, i)
        step = tour["steps"][i]
        assert pg.inner_text(f"{POPOVER} .driver-popover-title") == step["title"]
        if step.get("wait_for") and actions[i]:  # not before the person has done it
            assert pg.is_disabled(NEXT), f"{tour_id} step {i}: Next enabled too early"
        if actions[i]:
            actions[i](pg)
        try:
            next_enabled(pg)
        except Exception:
            p.shot(f"tour-{tour_id}-stuck-step{i}")
            raise AssertionError(
                f"{tour_id}: step {i} never enabled Next: {pg.inner_text(POPOVER)!r}"
            ) from None
        if i == 1:
            p.shot(f"tour-{tour_id}-step{i}")
        pg.click(NEXT)
    pg.wait_for_selector(POPOVER, state="detached")
    saved = json.loads(pg.evaluate("localStorage.getItem('layerscope-tours')"))
    assert saved[tour_id]["done"] is True


@pytest.mark.parametrize("tour_id", list(TOURS))
def test_tour_walks_end_to_end(page: Page, live_server, tour_id):
    pg = page.page
    open_page(page, live_server.url)
    pg.evaluate("localStorage.clear()")
    open_learn(page, "tours")
    for view in TOURS[tour_id]["views"]:  # the views it drives are on the page
        assert pg.locator(f"#tab-{view}").count() == 1, view
    pg.click(f".tour-card[data-tour='{tour_id}'] button[data-start]")
    walk(page, tour_id)
    assert pg.inner_text(f".tour-card[data-tour='{tour_id}'] .tour-progress") == "✓ Done."
    assert not page.errors, page.errors


def test_a_tour_can_be_left_and_resumed(page: Page, live_server):
    pg = page.page
    open_page(page, live_server.url)
    pg.evaluate("localStorage.clear()")
    open_learn(page, "tours")
    card = pg.locator(".tour-card[data-tour='fact-in-depth']")
    card.locator("button[data-start]").click()
    popover_at(pg, "fact-in-depth", 0)
    pg.click("#run")
    next_enabled(pg)
    pg.click(NEXT)
    popover_at(pg, "fact-in-depth", 1)
    tooltip_rows(pg, 4)
    next_enabled(pg)
    pg.click(NEXT)
    popover_at(pg, "fact-in-depth", 2)

    def leave(step: int) -> None:
        pg.click(f"{POPOVER} .tour-leave")
        pg.wait_for_selector(POPOVER, state="detached")
        saved = json.loads(pg.evaluate("localStorage.getItem('layerscope-tours')"))
        assert saved["fact-in-depth"] == {"step": step, "done": False}
        open_learn(page, "tours")
        assert f"Left at step {step + 1} of 6" in card.locator(".tour-progress").inner_text()
        assert card.locator("button[data-start]").inner_text() == "Resume"

    leave(2)
    # same visit: the trace is still on screen, so it resumes where it was left
    card.locator("button[data-start]").click()
    popover_at(pg, "fact-in-depth", 2)
    leave(2)
    # a new visit: progress is kept, but the trace is gone, so it resumes at the step running it
    pg.reload()
    pg.wait_for_selector("#run:not([disabled])", timeout=30_000)
    open_learn(page, "tours")
    assert "Left at step 3 of 6" in card.locator(".tour-progress").inner_text()
    card.locator("button[data-start]").click()
    popover_at(pg, "fact-in-depth", 0)
    assert pg.input_value("#prompt") == "The capital of France is"
    walk(page, "fact-in-depth")
    assert not page.errors, page.errors
