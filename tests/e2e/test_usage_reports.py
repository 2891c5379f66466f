"""Usage reports in Chromium on the real default model: a person scrubs 26 layers, opens three
views and runs an ablation; the page's debounced reports (the last one sent as the page goes away)
reach ``/metrics`` as that session's success measures — and never a prompt. A server without the
``usage`` request gets no reports and the page works as before."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from harness import LiveServer, Page
from prometheus_client.parser import text_string_to_metric_families
from test_experiments_ablation import ABLATED
from test_explorer import TRACE, run_prompt

PROMPT = "The capital of France is"


def scrape(server: LiveServer) -> dict[tuple[str, tuple], float]:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(server.url + "metrics", timeout=10) as r:
        text = r.read().decode()
    assert "capital" not in text and "France" not in text  # no prompt text, ever
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def metric(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def sent_frames(p: Page) -> list[dict]:
    """Every JSON frame the page sends over its WebSockets (listening from now on)."""
    out: list[dict] = []
    p.page.on("websocket", lambda ws: ws.on("framesent", lambda f: out.append(json.loads(f))))
    return out


def seen_views(reports: list[dict]) -> set[str]:
    return {v for f in reports for v in f["views"]}


def scrub(p: Page, key: str, n: int) -> None:
    p.page.evaluate("document.activeElement?.blur()")  # keys go to the page, not a control
    for _ in range(n):
        p.page.keyboard.press(key)


def test_a_session_reports_layers_views_and_experiments(page: Page, live_server):
    pg = page.page
    frames = sent_frames(page)
    before = scrape(live_server)
    run_prompt(page, live_server.url, prompt=PROMPT, generate=2)
    n_layers = pg.evaluate(f"{TRACE}.nLayers")
    scrub(page, "ArrowDown", 25)  # 30 → 5: 25 layer changes
    assert int(pg.inner_text("#layer-num")) == n_layers - 26
    scrub(page, "End", 1)  # back to the last layer: one more change
    scrub(page, "End", 1)  # already there: not a change
    for view in ("heads", "glossary", "ablation"):
        pg.click(f"#tab-{view}")
        pg.locator(f"#view-{view}").wait_for(state="visible")
    deadline = time.monotonic() + 30  # debounced reports: the first at most 5 s after a change
    while time.monotonic() < deadline:
        seen = [f for f in frames if f.get("type") == "usage"]
        if sum(f["layers_scrubbed"] for f in seen) == 26 and len(seen_views(seen)) == 3:
            break
        pg.wait_for_timeout(200)
    assert sum(f["layers_scrubbed"] for f in seen) == 26
    assert seen_views(seen) == {"ablation", "glossary", "heads"}
    assert not any(f["experiments"] for f in seen)
    pg.click("#abl-suggest")
    pg.click("#abl-run")  # an experiment: the effect of turning off head 23.4, then its trace
    pg.wait_for_function(ABLATED, timeout=300_000)
    scrub(page, "ArrowUp", 1)  # at the top already: nothing
    scrub(page, "ArrowDown", 1)
    # wait for the debounced report rather than count on the one sent as the page goes away
    # (pagehide), which is best effort by nature
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = [f for f in frames if f.get("type") == "usage"]
        if sum(f["layers_scrubbed"] for f in seen) == 27 and any(f["experiments"] for f in seen):
            break
        pg.wait_for_timeout(200)
    pg.reload()
    pg.wait_for_selector("#run:not([disabled])", timeout=30_000)
    page.page.close()

    # the reports seen leaving the page: counts and ids only
    reports = [f for f in frames if f.get("type") == "usage"]
    keys = {"type", "req", "layers_scrubbed", "views", "experiments"}
    assert all(set(f) == keys for f in reports), reports
    assert "capital" not in json.dumps(reports)

    deadline = time.monotonic() + 30  # both sessions (before and after the reload) closed
    while True:
        now = scrape(live_server)
        closed = metric(now, "layerscope_session_layers_scrubbed_count") - metric(
            before, "layerscope_session_layers_scrubbed_count"
        )
        if closed >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert closed == 2
    delta = lambda name, **kw: metric(now, name, **kw) - metric(before, name, **kw)  # noqa: E731
    assert delta("layerscope_session_layers_scrubbed_sum") == 27
    # one session above the brief's 20 layers, the other (after the reload) scrubbed none
    assert delta("layerscope_session_layers_scrubbed_bucket", le="20.0") == 1
    assert delta("layerscope_session_layers_scrubbed_bucket", le="0.0") == 1
    assert delta("layerscope_layers_scrubbed_total") == 27
    for view in ("heads", "glossary", "ablation"):
        assert delta("layerscope_views_used_total", view=view) == 1, view
    for name in ("effect", "trace_ablate"):
        assert delta("layerscope_experiments_used_total", experiment=name) == 1, name
    assert delta("layerscope_requests_total", type="usage", outcome="ok") >= len(reports)
    assert delta("layerscope_session_seconds_count") == 2
    assert metric(now, "layerscope_connected_clients") == 0
    assert not page.errors, page.errors


@pytest.fixture(scope="module")
def server_without_usage(real_model):
    from layerscope.server.handlers import REGISTRY
    from layerscope.server.registry import Registry

    with LiveServer(real_model, registry=Registry(t for t in REGISTRY if t.type != "usage")) as s:
        yield s


def test_a_server_without_usage_reports_gets_none(page: Page, server_without_usage):
    pg = page.page
    frames = sent_frames(page)
    run_prompt(page, server_without_usage.url, prompt=PROMPT, generate=0)
    assert "usage" not in page.hello["requests"]
    scrub(page, "ArrowDown", 3)
    pg.click("#tab-heads")
    pg.locator("#view-heads").wait_for(state="visible")
    pg.wait_for_timeout(5600)  # past the report interval
    pg.evaluate("dispatchEvent(new PageTransitionEvent('pagehide'))")
    pg.wait_for_timeout(200)
    assert int(pg.inner_text("#layer-num")) == pg.evaluate(f"{TRACE}.nLayers") - 4
    assert [f for f in frames if f.get("type") == "usage"] == []
    assert pg.locator(".notice.error").is_hidden()
    assert not page.errors, page.errors


def test_a_saved_page_never_reports(page: Page, real_model, tmp_path):
    path = real_model.trace(PROMPT).save_html(tmp_path / "saved.html")
    pg = page.page
    pg.goto(path.as_uri())
    pg.wait_for_function(f"{TRACE}?.complete && document.querySelectorAll('.tok').length")
    scrub(page, "ArrowDown", 3)
    pg.click("#tab-heads")
    pg.wait_for_timeout(5600)  # past the report interval
    pg.evaluate("dispatchEvent(new PageTransitionEvent('pagehide'))")
    pg.wait_for_timeout(200)
    assert page.requests == [path.as_uri()]  # the page itself: no socket, no report
    assert not page.errors, page.errors
