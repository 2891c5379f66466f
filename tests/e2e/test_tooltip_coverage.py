"""Every control and every view has a glossary tooltip: the rule of web/js/core/tooltips.js.

Every `button, input, select, textarea, [role=tab]` on the page — checked after each tab is opened
and drawn, so controls a view adds when it draws are checked too — must carry a `data-term`
itself, inside its label, or on a `<label for>` of it, naming an id of glossary.json; each view's
tab and its one-line description must carry one too. The tabs are whatever the page has: views
added later are covered without touching this test.
"""

from __future__ import annotations

from harness import Page
from learn_helpers import glossary_ids, open_page, run_prompt

UNCOVERED = """async (known) => {
    const { uncovered } = await import('/static/js/core/tooltips.js');
    return uncovered(document, new Set(known)).map(({ el, why }) => {
        const where = el.closest('.view')?.id ?? el.closest('header, section')?.className ?? '';
        const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
            (el.type ? `[type=${el.type}]` : '');
        const text = (el.textContent || el.value || '').trim().slice(0, 30);
        return `${where}: ${name} "${text}" (${why})`;
    });
}"""


def test_every_control_and_view_has_a_glossary_term(page: Page, live_server):
    pg = page.page
    known = sorted(glossary_ids())
    open_page(page, live_server.url)
    run_prompt(page, "The capital of France is", generate=2)
    tabs = pg.eval_on_selector_all("[role=tab]", "els => els.map(e => e.id.slice(4))")
    assert len(tabs) >= 14  # the explorer's views and the Learn ones
    problems: list[str] = []
    for view in tabs:
        pg.click(f"#tab-{view}")
        pg.locator(f"#view-{view}").wait_for(state="visible")
        pg.wait_for_function(  # drawn: no "Computing…" left
            f"!document.querySelector('#view-{view} .placeholder:not([hidden])')", timeout=90_000
        )
        pg.wait_for_timeout(400)
        for what, sel in (("tab", f"#tab-{view}"), ("description", f"#view-{view} .view-desc")):
            term = pg.get_attribute(sel, "data-term")
            if term not in known:
                has = "no term" if term is None else f"unknown term {term}"
                problems.append(f"view {view}: its {what} has {has}")
        problems += pg.evaluate(UNCOVERED, known)
    problems = sorted(set(problems))
    assert problems == [], "\n".join(problems)
    assert not page.errors, page.errors


def test_the_rule_rejects_what_it_should(page: Page, live_server):
    """A term high up on a panel covers nothing; a label's or a `<label for>`'s term does."""
    pg = page.page
    open_page(page, live_server.url)
    verdicts = pg.evaluate(
        """async () => {
            const { uncovered } = await import('/static/js/core/tooltips.js');
            const box = document.createElement('div');
            box.innerHTML = `
              <div data-term="logit-lens"><button id="a">far from its term</button></div>
              <label data-term="seed">Seed <span><input id="b"></span></label>
              <label for="c" data-term="temperature">T</label><input id="c">
              <button id="d" data-term="no-such-term">x</button>
              <select id="e" data-term="rank"></select>
              <label data-term="seed"><span data-term="top-k-sampling"><input id="f"></span>
              </label>`;
            document.body.append(box);
            const bad = uncovered(box, new Set(['logit-lens', 'seed', 'temperature', 'rank',
                                                'top-k-sampling']));
            box.remove();
            return bad.map(({ el, why }) => [el.id, why]);
        }"""
    )
    assert verdicts == [["a", "no term"], ["d", "unknown term no-such-term"]]
