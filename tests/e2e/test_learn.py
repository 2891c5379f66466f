"""The Learn side in the browser: glossary search and tooltips, the docs panel, the chat panel."""

from __future__ import annotations

import json

import pytest
from harness import Page
from learn_helpers import CONTENT, doc_slugs, open_learn, open_page, run_prompt

GLOSSARY = json.loads((CONTENT / "glossary.json").read_text())["terms"]
BY_ID = {t["id"]: t for t in GLOSSARY}


def visible_terms(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "#glossary-list .term-entry:not([hidden])", "els => els.map(e => e.dataset.id)"
    )


def test_glossary_search_links_and_views(page: Page, live_server):
    pg = page.page
    open_page(page, live_server.url)
    open_learn(page, "glossary")  # no trace needed
    pg.wait_for_selector("#glossary-list .term-entry")
    assert len(visible_terms(pg)) == len(GLOSSARY)
    assert pg.inner_text("#glossary-count") == f"{len(GLOSSARY)} terms"
    # search filters by name and definition: every word must match
    pg.fill("#glossary-search", "induction")
    shown = visible_terms(pg)
    expect = [
        t["id"]
        for t in GLOSSARY
        if "induction" in f"{t['term']} {t['id']} {t['short']} {t['long']}".lower()
    ]
    assert sorted(shown) == sorted(expect) and "induction-head" in shown
    assert f"{len(expect)} of {len(GLOSSARY)}" in pg.inner_text("#glossary-count")
    pg.fill("#glossary-search", "zzqx no such words")
    assert visible_terms(pg) == []
    pg.fill("#glossary-search", "induction-head")  # its id: only this entry mentions it
    assert visible_terms(pg) == ["induction-head"]
    entry = pg.locator("#term-induction-head")
    t = BY_ID["induction-head"]
    assert entry.locator("h3").inner_text() == t["term"]
    assert entry.locator(".term-short").inner_text() == t["short"]
    page.shot("learn-glossary-search")

    # a related term opens its entry even when the search hides it
    def hidden_by(q, r):
        hay = f"{BY_ID[r]['term']} {r} {BY_ID[r]['short']} {BY_ID[r]['long']}".lower()
        return not all(w in hay for w in q.split())

    related = next(r for r in t["related"] if r in BY_ID and hidden_by("induction-head", r))
    assert pg.locator(f"#term-{related}").is_hidden()
    entry.locator(f"a[data-goto='{related}']").click()
    pg.wait_for_function(
        f"!document.querySelector('#term-{related}').hidden"
        f" && document.activeElement === document.querySelector('#term-{related} h3')"
    )
    assert pg.input_value("#glossary-search") == ""
    # a document link opens the docs panel at that document
    doc = BY_ID[related]["docs"][0]
    pg.locator(f"#term-{related} a[data-doc='{doc}']").click()
    pg.wait_for_selector(f"#doc-body[data-doc='{doc}']")
    assert pg.is_visible("#view-docs")
    # a view link opens that view's tab (with a trace on screen)
    run_prompt(page, "The capital of France is")
    open_learn(page, "glossary")
    pg.locator("#term-heatmap button[data-view='heatmap']").click()
    pg.locator("#view-heatmap").wait_for(state="visible")
    assert pg.get_attribute("#tab-heatmap", "aria-selected") == "true"
    assert not page.errors, page.errors


def test_tooltips_on_hover_and_focus(page: Page, live_server):
    pg = page.page
    open_page(page, live_server.url)
    tip = pg.locator("#term-tip")
    pg.hover("#run")
    tip.wait_for(state="visible")
    assert tip.locator("strong").inner_text() == BY_ID["forward-pass"]["term"]
    assert tip.locator("p").inner_text() == BY_ID["forward-pass"]["short"]
    assert pg.get_attribute("#run", "aria-describedby") == "term-tip"
    # the tip is built from text: only our three children, no markup from the glossary
    assert pg.eval_on_selector("#term-tip", "el => [...el.children].map(c => c.tagName)") == [
        "STRONG",
        "P",
        "BUTTON",
    ]
    page.shot("learn-tooltip-hover")
    pg.mouse.move(5, 600)
    tip.wait_for(state="hidden")
    assert pg.get_attribute("#run", "aria-describedby") is None
    # keyboard: focusing a control wrapped in its label shows the label's term at once
    pg.focus("#generate")
    tip.wait_for(state="visible")
    assert tip.locator("strong").inner_text() == BY_ID["greedy-decoding"]["term"]
    assert pg.get_attribute("#generate", "aria-describedby") == "term-tip"
    pg.keyboard.press("Escape")
    tip.wait_for(state="hidden")
    pg.keyboard.press("Shift+Tab")  # back to the chat-template switch
    tip.wait_for(state="visible")
    assert tip.locator("strong").inner_text() == BY_ID["chat-template"]["term"]
    # "More in the glossary" opens the entry
    pg.hover("#run")
    pg.wait_for_function(
        "document.querySelector('#term-tip strong').textContent === "
        + json.dumps(BY_ID["forward-pass"]["term"])
    )
    pg.locator("#term-tip .term-more").click()
    pg.locator("#view-glossary").wait_for(state="visible")
    pg.wait_for_function(
        "document.activeElement === document.querySelector('#term-forward-pass h3')", timeout=10_000
    )
    assert pg.locator("#term-forward-pass").is_visible()
    assert not page.errors, page.errors


def test_docs_render_links_and_anchors(page: Page, live_server):
    pg = page.page
    open_page(page, live_server.url)
    open_learn(page, "docs")
    pg.wait_for_selector("#docs-list a")
    slugs = doc_slugs()
    listed = pg.eval_on_selector_all("#docs-list a", "els => els.map(e => e.dataset.doc)")
    assert sorted(listed) == sorted(slugs)
    # every link between documents resolves: the document exists and so does its #anchor
    broken = pg.evaluate(
        """async (slugs) => {
            const { renderMarkdown } = await import('/static/js/learn/markdown.js');
            const get = async (s) => (await fetch('/api/docs/' + s)).json();
            const docs = {};
            for (const s of slugs) docs[s] = await get(s);
            const ids = (d) => new Set(d.headings.map((h) => h.anchor));
            const bad = [];
            for (const s of slugs) {
                const { fragment, headings } = renderMarkdown(docs[s].markdown);
                // the renderer's anchors are the server's (the chat cites those)
                const mine = headings.map((h) => h.id).join(' ');
                const theirs = docs[s].headings.map((h) => h.anchor).join(' ');
                if (mine !== theirs) bad.push(`${s}: anchors ${mine} != ${theirs}`);
                for (const a of fragment.querySelectorAll('a[data-anchor]')) {
                    const to = a.dataset.doc || s;
                    if (!docs[to]) bad.push(`${s} -> ${to}.md (no such document)`);
                    else if (a.dataset.anchor && !ids(docs[to]).has(a.dataset.anchor))
                        bad.push(`${s} -> ${to}.md#${a.dataset.anchor} (no such heading)`);
                }
            }
            return bad;
        }""",
        sorted(slugs),
    )
    assert broken == [], broken
    # raw HTML in markdown is shown as text, never parsed
    html = pg.evaluate(
        """async () => {
            const { renderMarkdown } = await import('/static/js/learn/markdown.js');
            const src = '# T\\n\\n<img src=x onerror="window.pwned=1"> **b** ' +
                '[x](javascript:alert(1))';
            const div = document.createElement('div');
            div.append(renderMarkdown(src).fragment);
            return [div.querySelectorAll('img, script').length, div.querySelector('p').textContent,
                    div.querySelectorAll('a').length];
        }"""
    )
    assert html[0] == 0 and html[1].startswith("<img src=x") and html[2] == 0
    # follow a link with an anchor inside a document: the target document opens scrolled there
    source, target, anchor = pg.evaluate(
        """async (slugs) => {
            const { renderMarkdown } = await import('/static/js/learn/markdown.js');
            for (const s of slugs) {
                const d = await (await fetch('/api/docs/' + s)).json();
                const a = renderMarkdown(d.markdown).fragment
                    .querySelector('a[data-doc][data-anchor]:not([data-anchor=""])');
                if (a && a.dataset.doc !== s) return [s, a.dataset.doc, a.dataset.anchor];
            }
            return [null, null, null];
        }""",
        sorted(slugs),
    )
    assert source, "no document links to another document's section"
    pg.click(f"#docs-list a[data-doc='{source}']")
    pg.wait_for_selector(f"#doc-body[data-doc='{source}']")
    link = pg.locator(f"#doc-body a[data-doc='{target}'][data-anchor='{anchor}']").first
    link.scroll_into_view_if_needed()
    link.click()
    pg.wait_for_selector(f"#doc-body[data-doc='{target}']")
    pg.wait_for_function(
        f"""(() => {{ const h = document.getElementById({json.dumps(anchor)});
            if (!h) return false; const r = h.getBoundingClientRect();
            return r.top >= 0 && r.top < window.innerHeight / 2; }})()"""
    )
    assert pg.eval_on_selector(f"[id='{anchor}']", "el => el.classList.contains('flash')")
    assert pg.get_attribute(f"#docs-list a[data-doc='{target}']", "aria-current") == "page"
    page.shot("learn-docs-anchor")
    # tables, code and lists render as such
    pg.click("#docs-list a[data-doc='logit-lens']")
    pg.wait_for_selector("#doc-body[data-doc='logit-lens'] table")
    assert pg.locator("#doc-body pre code").count() >= 1
    assert pg.locator("#doc-body ul li").count() >= 2
    assert not page.errors, page.errors


def test_chat_sources_answer_and_citation(page: Page, live_server):
    pg = page.page
    sent = []
    pg.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    open_page(page, live_server.url)
    run_prompt(page, "The capital of France is")
    pg.click("#tab-heatmap")
    open_learn(page, "chat")
    assert "model smollm2" in pg.inner_text("#chat-context")
    pg.fill("#chat-question", "What is the logit lens?")
    pg.click("#chat-send")
    pg.wait_for_selector(".chat-turn.assistant .chat-source", timeout=300_000)
    pg.wait_for_function(
        "document.querySelector('.chat-turn.assistant .chat-mode')?.dataset.mode",
        timeout=600_000,
    )
    mode = pg.get_attribute(".chat-turn.assistant .chat-mode", "data-mode")
    label = pg.inner_text(".chat-turn.assistant .chat-mode")
    assert mode in ("model", "extractive"), mode  # no endpoint configured here
    assert (
        label
        == {
            "model": "answered by the loaded model",
            "extractive": "extractive: assembled from the best passages",
        }[mode]
    )
    answer = pg.inner_text(".chat-turn.assistant .chat-answer")
    assert len(answer) > 40
    sources = pg.eval_on_selector_all(
        ".chat-turn.assistant .source-link", "els => els.map(e => e.textContent)"
    )
    assert sources and sources[0].startswith("[1] ")
    page.shot("learn-chat-answer", full_page=True)
    # the question went with the page's context
    asks = [m for m in map(json.loads, sent) if m.get("type") == "ask"]
    assert len(asks) == 1
    ctx = asks[0]["context"]
    assert ctx["prompt"] == "The capital of France is" and ctx["view"] == "heatmap"
    assert ctx["layer"] == 30 and ctx["model"] and ctx["interventions"] == []
    # a citation (or the first source) opens the docs panel at its passage
    cite = pg.locator(".chat-turn.assistant .cite")
    target = cite.first if cite.count() else pg.locator(".chat-turn.assistant .source-link").first
    href = target.get_attribute("href")
    doc = href[1:].split("#")[0]
    target.click()
    pg.wait_for_selector(f"#doc-body[data-doc='{doc}']")
    assert pg.is_visible("#view-docs")
    assert not page.errors, page.errors


@pytest.mark.parametrize("width", [1280, 768])
def test_learn_views_read_well(browser, live_server, width):
    p = Page(browser, width=width, height=900)
    pg = p.page
    try:
        open_page(p, live_server.url)
        p.shot(f"learn-empty-{width}", full_page=True)
        for view in ("tours", "glossary", "docs", "chat"):
            open_learn(p, view)
            pg.wait_for_function(
                f"!document.querySelector('#view-{view} .placeholder:not([hidden])')",
                timeout=30_000,
            )
            pg.wait_for_timeout(300)
            assert pg.evaluate("document.documentElement.scrollWidth") <= width
            desc = pg.locator(f"#view-{view} .view-desc").inner_text()
            assert 40 < len(desc) < 220, desc
            p.shot(f"learn-{view}-{width}")
        assert not p.errors, p.errors
    finally:
        p.close()
