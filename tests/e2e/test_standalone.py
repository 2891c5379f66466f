"""The explorer with no server: a page written by trace.save_html opened from disk (file://) in
headless Chromium scrubs, hovers and draws the heatmap from its own data, with no request off the
machine; and the served app opens saved traces (file picker, drag and drop) and downloads one."""

from __future__ import annotations

import json

import pytest
from harness import SHOTS, Page
from test_explorer import run_prompt

from layerscope.engine.export import html as export

TRACE = "window.layerscope.store.current"
WS = {" ": "·", "\n": "↵", "\r": "␍", "\t": "⇥"}
TEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It "
    "is named after the engineer Gustave Eiffel, whose company designed and built the tower from "
    "1887 to 1889. Locally nicknamed the Iron Lady, it was constructed as the centrepiece of the "
    "1889 World's Fair, and to crown the centennial anniversary of the French Revolution. "
    "Although initially criticised by some of France's leading artists and intellectuals for its "
    "design, it has since become a global cultural icon of France and one of the most "
    "recognisable structures in the world. The tower received 5,889,000 visitors in 2022. The "
    "Eiffel Tower is the most visited monument with an entrance fee in the world."
)


def shown(text: str) -> str:
    """A token as a chip shows it (web/js/core/format.js tokenHTML): whitespace made visible."""
    return "".join(WS.get(c, c) for c in text) if text else "∅"


@pytest.fixture(scope="module")
def trace128(real_model):
    ids = real_model.tokenizer.encode(TEXT)[:128]
    assert len(ids) == 128
    return real_model.trace(ids=ids, lens_top_k=10)


@pytest.fixture(scope="module")
def saved(trace128, tmp_path_factory):
    path = trace128.save_html(tmp_path_factory.mktemp("standalone") / "trace128.html")
    size = path.stat().st_size
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "standalone-size.txt").write_text(f"128-token trace page: {size} bytes\n")
    print(f"\n128-token trace page: {size / 1e6:.2f} MB")
    assert size < 3_000_000
    return path


def open_saved(p: Page, path) -> None:
    p.page.goto(path.as_uri())
    p.page.wait_for_function(f"{TRACE}?.complete && document.querySelectorAll('.tok').length")
    p.page.wait_for_selector("#heatmap .main-svg", timeout=30_000)


def chips(p: Page) -> list[str]:
    return p.page.eval_on_selector_all(".tok .out", "els => els.map(e => e.textContent)")


def assert_layer(p: Page, trace, layer: int) -> None:
    assert int(p.page.inner_text("#layer-num")) == layer
    assert p.page.eval_on_selector("#layer-slider", "el => +el.value") == layer
    ids = trace.tokens_at(layer)
    assert chips(p) == [shown(trace.token_text[i]) for i in ids]
    assert "".join(trace.token_text[i] for i in ids) == trace.text_at(layer)


def test_saved_page_scrubs_offline(page: Page, browser, saved, trace128):
    pg = page.page
    open_saved(page, saved)
    assert page.requests == [saved.as_uri()]  # the page itself, nothing else
    assert not page.errors, page.errors
    L = trace128.n_lens_layers
    assert pg.evaluate(f"{TRACE}.nLayers") == L and len(chips(page)) == 128
    assert "offline" in pg.inner_text(".conn")
    assert_layer(page, trace128, L - 1)
    # keys: down from the output, Home to the embedding, End back
    pg.focus("#tokens")
    for _ in range(L - 1 - 12):
        pg.keyboard.press("ArrowDown")
    assert_layer(page, trace128, 12)
    pg.keyboard.press("Home")
    assert_layer(page, trace128, 0)
    # the slider
    pg.eval_on_selector(
        "#layer-slider", "el => { el.value = 20; el.dispatchEvent(new Event('input')); }"
    )
    assert_layer(page, trace128, 20)
    # diff colours: a chip is "same" exactly where layer 20 already predicts the final token
    same = pg.eval_on_selector_all(".tok .out", "els => els.map(e => e.classList.contains('same'))")
    assert same == trace128.stable_at(20).tolist() and 0 < sum(same) < 128
    stripes = pg.eval_on_selector_all(".tok .stripe", "els => els.map(e => e.style.background)")
    assert all(s.startswith("linear-gradient") for s in stripes)
    # hover: the top 3 of layer 20 at position 5
    pg.hover(".tok[data-pos='5']")
    pg.wait_for_selector("#tooltip:not([hidden])")
    rows = pg.eval_on_selector_all(
        "#tooltip table tr td:first-child code", "els => els.map(e => e.textContent)"
    )
    top3 = trace128.lens.top_ids[20, 5, :3].tolist()
    assert rows == [shown(trace128.token_text[i]) for i in top3]
    page.shot("standalone-hover")
    pg.mouse.move(5, 5)
    # the heatmap: layers × positions of the saved trace
    z = pg.evaluate("document.querySelector('#heatmap')._fullData[0].z")
    assert len(z) == L and len(z[0]) == 128
    page.shot("standalone-1280", full_page=True)
    # a view that needs the model says so and shows the Python
    pg.click("#tab-heads")
    note = pg.locator("#view-heads .needs-note")
    note.wait_for()
    assert "Needs the model" in note.inner_text() and "head_logit_lens" in note.inner_text()
    assert pg.locator("#view-heads .view-body").is_hidden()
    pg.click("#tab-patching")
    assert "model.patch_sweep(" in pg.inner_text("#view-patching .needs-note")
    page.shot("standalone-needs-model", element=".views-card")
    assert not page.errors and not page.foreign

    narrow = Page(browser, width=768, height=1000)
    try:
        open_saved(narrow, saved)
        narrow.page.focus("#tokens")
        narrow.page.keyboard.press("ArrowDown")
        assert_layer(narrow, trace128, L - 2)
        narrow.shot("standalone-768", full_page=True)
        assert not narrow.errors and not narrow.foreign
    finally:
        narrow.close()


def test_served_app_opens_a_saved_trace(page: Page, live_server, real_model, tmp_path):
    pg = page.page
    trace = real_model.trace("The capital of France is", generate=4)
    path = trace.save(tmp_path / "france.lstrace.json")
    pg.goto(live_server.url)
    pg.wait_for_selector("#run:not([disabled])", timeout=30_000)
    pg.set_input_files("#open-file", str(path))
    pg.wait_for_function(f"{TRACE}?.source && document.querySelectorAll('.tok').length")
    assert "france.lstrace.json" in pg.inner_text(".source-line")
    last = trace.n_lens_layers - 1
    assert_layer(page, trace, last)
    pg.wait_for_selector("#heatmap .main-svg")
    pg.click("#tab-trajectory")  # the server holds no activations of a file's trace
    assert "opened from a file" in pg.inner_text("#view-trajectory .needs-note")
    page.shot("served-opened-file", full_page=True)

    # drag and drop an exported page (its embedded document)
    other = real_model.trace("Paris is the capital of", generate=3)
    page_text = export.trace_html(other)
    pg.evaluate(
        """([text, name]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([text], name, { type: "text/html" }));
            const ev = (type) => new DragEvent(type, { dataTransfer: dt, cancelable: true });
            document.dispatchEvent(ev("dragover"));
            document.dispatchEvent(ev("drop"));
        }""",
        [page_text, "paris.html"],
    )
    pg.wait_for_function(f"{TRACE}?.source?.name === 'paris.html'")
    assert_layer(page, other, last)
    assert pg.locator(".drop-zone").is_hidden()
    # a broken file is a clear error, and the trace on screen stays
    pg.set_input_files(
        "#open-file",
        files=[
            {
                "name": "bad.json",
                "mimeType": "application/json",
                "buffer": json.dumps({"format": "x"}).encode(),
            }
        ],
    )
    pg.wait_for_selector(".notice.error:not([style*='none'])")
    assert "not a layerscope trace" in pg.inner_text(".notice.error")
    assert_layer(page, other, last)
    assert not page.errors, page.errors


def test_download_button_writes_a_page_that_scrubs(page: Page, browser, live_server, tmp_path):
    pg = page.page
    run_prompt(page, live_server.url, generate=5)
    with pg.expect_download() as dl:
        pg.click("#download")
    path = tmp_path / "downloaded.html"
    dl.value.save_as(path)
    text = path.read_text(encoding="utf-8")
    assert 'src="' not in text.split('<script type="application/json"')[0]
    assert "/static/js/main.js" not in text and len(text) < 2_500_000
    ids, n_layers = pg.evaluate(f"[[...{TRACE}.ids], {TRACE}.nLayers]")
    served_chips = chips(page)

    offline = Page(browser)
    try:
        open_saved(offline, path)
        assert offline.page.evaluate(f"[...{TRACE}.ids]") == ids
        assert offline.page.evaluate(f"{TRACE}.nLayers") == n_layers
        assert chips(offline) == served_chips  # the same predictions at the final layer
        offline.page.focus("#tokens")
        offline.page.keyboard.press("Home")
        assert int(offline.page.inner_text("#layer-num")) == 0
        assert offline.requests == [path.as_uri()]
        assert not offline.errors and not offline.foreign
        offline.shot("downloaded-offline", full_page=True)
    finally:
        offline.close()
