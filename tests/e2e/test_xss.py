"""Token strings, chat output and document text are text, never HTML, in every view.

A tiny model whose tokenizer renders some ids as ``<img src=x onerror=alert(1)>`` (and others as
``<b>B</b>``, which Plotly would draw bold if it parsed it) is served; a prompt is traced so
the payloads are prompt tokens and top-k predictions, then every place tokens appear is opened.
Nothing may run (no dialog), no ``<img src="x">`` may exist in any frame, the strict page policy
must report no violation, and the payload must be readable as text where tokens are shown.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import SimpleNamespace

import pytest
from harness import LiveServer, Page

from layerscope.learn import kb
from layerscope.models.base import Tokenizer
from layerscope.server import learn_routes

PAYLOAD = "<img src=x onerror=alert(1)>"
BOLD = "<b>B</b>"  # Plotly's label markup: drawn bold (not literally) if a label is not escaped
PROMPT = "The capital of France is"
COMPLETE = "window.layerscope && window.layerscope.store.current?.complete"
DONE = "!document.querySelector('#view-{v} .placeholder:not([hidden])')"
DOC_SLUG = "zz-xss-check"
# every securitypolicyviolation the page (or its frames) reports
WATCH_CSP = """window.__csp = []; document.addEventListener('securitypolicyviolation', (e) =>
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"""


class PayloadTokenizer(Tokenizer):
    """A tokenizer whose ``token_text`` (and ``decode``) shows some ids as HTML payloads."""

    def __init__(self, base: Tokenizer, texts: dict[int, str]) -> None:
        self.base, self.texts = base, texts
        self.bos_id, self.pad_id = base.bos_id, base.pad_id

    def encode(self, text: str) -> list[int]:
        return self.base.encode(text)

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return self.base.encode_chat(messages)

    def decode(self, ids: Sequence[int]) -> str:
        out, run = [], []
        for i in ids:
            if int(i) in self.texts:
                out += [self.base.decode(run), self.texts[int(i)]]
                run = []
            else:
                run.append(i)
        return "".join(out) + self.base.decode(run)

    def token_text(self, token_id: int) -> str:
        return self.texts.get(int(token_id)) or self.base.token_text(token_id)

    @property
    def stop_ids(self) -> frozenset[int]:
        return self.base.stop_ids


def payload_model():
    """The tiny model; prompt tokens 1 and 3 and a share of the vocabulary are payloads."""
    from layerscope.engine.model import lens_model_of
    from tiny import tiny_model

    lm = lens_model_of(tiny_model("llama"))
    base = lm.tokenizer
    ids = base.encode(PROMPT)
    texts = {i: PAYLOAD for i in range(lm.info.vocab_size) if i % 5 == 1}
    texts |= {i: BOLD for i in range(lm.info.vocab_size) if i % 5 == 3}
    texts |= {ids[1]: PAYLOAD, ids[3]: BOLD}
    texts = {i: t for i, t in texts.items() if i not in base.stop_ids}
    lm.tokenizer = PayloadTokenizer(base, texts)
    return lm


@pytest.fixture(scope="module")
def xss_server():
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "learn"))
    from fake_openai import FakeOpenAI

    from layerscope.server.app import missing_vendor_files

    if missing := missing_vendor_files():
        pytest.fail(f"web vendor files missing ({', '.join(missing)}): run `make web`")
    answer = (
        f"The logit lens reads each layer of the model through the unembedding [1]. {PAYLOAD} "
        f"{BOLD}"
    )
    doc = kb.parse_doc(
        DOC_SLUG,
        f"# Tokens {PAYLOAD}\n\nA token may read {PAYLOAD} or {BOLD}: it is text.\n\n"
        f"## Heading {PAYLOAD}\n\n- item {PAYLOAD}\n\n`{PAYLOAD}` and **{BOLD}**\n",
    )
    # the docs routes see one extra document; the chat's index is left as it is
    docs = SimpleNamespace(load_docs=lambda: [*kb.load_docs(), doc], load_json=kb.load_json)
    real_kb, env = learn_routes.kb, os.environ.get("LAYERSCOPE_CHAT_URL")
    with FakeOpenAI(pieces=[answer[:40], answer[40:]]) as fake:
        learn_routes.kb = docs
        os.environ["LAYERSCOPE_CHAT_URL"] = fake.url
        try:
            with LiveServer(payload_model()) as server:
                yield server
        finally:
            learn_routes.kb = real_kb
            if env is None:
                os.environ.pop("LAYERSCOPE_CHAT_URL", None)
            else:
                os.environ["LAYERSCOPE_CHAT_URL"] = env


CLEAN = "The capital of Italy is"
CORRUPTED = "The capital of Paris is"  # as many tiny tokens as CLEAN
#: (view, fields to fill, its run button, what appears when its answer has arrived)
EXPERIMENTS = [
    (
        "patching",
        [("#patch-clean", CLEAN), ("#patch-corrupted", CORRUPTED)],
        "#patch-run",
        "#patch .main-svg",
    ),
    (
        "componentpatching",
        [("#cp-clean", CLEAN), ("#cp-corrupted", CORRUPTED)],
        "#cp-run",
        "#cp-summary:not([hidden])",
    ),
    ("attribution", [("#attr-steps", "8")], "#attr-run", "#attr-strips .attr-row"),
    (
        "compare",
        [("#cmp-a", PROMPT), ("#cmp-b", "Hello world")],
        "#cmp-run",
        "#cmp-strip-b .cmp-tok",
    ),
    ("early", [("#early-layer", "1"), ("#early-tokens", "6")], "#early-run", "#early-text"),
    ("ablation", [], "#abl-run", "#abl-effect code"),
    (
        "steering",
        [("#steer-prompt", PROMPT), ("#steer-n", "6")],
        "#steer-run",
        "#steer-out .steer-text",
    ),
]


def literal(s: str) -> str:
    """Text as the page shows it, with the visible-whitespace dots read as spaces."""
    return s.replace("·", " ").replace("\u00a0", " ")


class Watch:
    """Dialogs, injected images and policy violations, checked after every step."""

    def __init__(self, p: Page) -> None:
        self.p, self.dialogs = p, []
        p.context.add_init_script(WATCH_CSP)
        p.page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def check(self, where: str) -> None:
        pg = self.p.page
        pg.wait_for_timeout(150)
        assert self.dialogs == [], f"{where}: a dialog fired: {self.dialogs}"
        for frame in pg.frames:
            n = frame.evaluate("document.querySelectorAll('img[src=\"x\"], img[onerror]').length")
            assert n == 0, f"{where}: an <img> from a token exists in {frame.url}"
            bold = frame.evaluate(
                "[...document.querySelectorAll('b, strong')].filter((e) => "
                "e.textContent === 'B').length"
            )
            assert bold == 0, f"{where}: <b>B</b> was parsed as HTML in {frame.url}"
            csp = frame.evaluate("window.__csp || []")
            assert csp == [], f"{where}: policy violations in {frame.url}: {csp}"

    def text(self, selector: str) -> str:
        """The element's text and the text of any SVG (Plotly) inside it."""
        return literal(
            self.p.page.eval_on_selector(
                selector,
                "el => el.innerText + ' ' + [...el.querySelectorAll('svg text, svg title')]"
                ".map((t) => t.textContent).join(' ')",
            )
        )


def open_view(p: Page, view: str, timeout: int = 120_000) -> None:
    p.page.click(f"#tab-{view}")
    p.page.locator(f"#view-{view}").wait_for(state="visible")
    p.page.wait_for_function(DONE.format(v=view), timeout=timeout)
    p.page.wait_for_timeout(400)


def hover_plot(p: Page, plot: str, row: int, col: int) -> str:
    """Hover grid cell (row, col) of a Plotly heatmap; the hover label's text."""
    x, y = p.page.evaluate(
        """([sel, row, col]) => {
            const gd = document.querySelector(sel);
            gd.scrollIntoView({block: "center"});
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const r = gd.getBoundingClientRect();
            return [r.left + xa._offset + xa.l2p(col), r.top + ya._offset + ya.l2p(row)];
        }""",
        [plot, row, col],
    )
    p.page.mouse.move(x, y)
    p.page.wait_for_selector(f"{plot} .hoverlayer .hovertext", timeout=10_000)
    return literal(p.page.text_content(f"{plot} .hoverlayer") or "")


def test_token_chat_and_doc_text_never_become_html(browser, xss_server):
    p = Page(browser, width=1280, height=900)
    watch = Watch(p)
    pg = p.page
    try:
        pg.goto(xss_server.url)
        pg.wait_for_selector("#run:not([disabled])", timeout=30_000)
        pg.fill("#prompt", PROMPT)
        pg.fill("#generate", "4")
        pg.click("#run")
        pg.wait_for_function(COMPLETE, timeout=120_000)
        watch.check("trace")

        # scrubber: prompt tokens and predictions
        chips = watch.text("#tokens")
        assert PAYLOAD in chips and BOLD in chips
        pg.hover(".tok[data-pos='1']")  # a payload token: its top-3 tooltip
        pg.wait_for_timeout(300)
        assert PAYLOAD in literal(pg.inner_text("body"))
        watch.check("scrubber tooltip")
        for layer in (0, 1):  # other layers predict other (payload) tokens
            pg.eval_on_selector(
                "#layer-slider",
                f"el => {{ el.value = {layer}; el.dispatchEvent(new Event('input')); }}",
            )
            watch.check(f"scrubbed to layer {layer}")
        p.shot("xss-01-scrubber", full_page=True)

        # the heatmap: tick labels and a cell's hover text (top-5 of each cell)
        open_view(p, "heatmap")
        assert "3:" + BOLD in watch.text("#view-heatmap")
        hovers = " ".join(hover_plot(p, "#heatmap", r, 3) for r in range(3))
        assert BOLD in hovers and "<img src=x" in hovers
        watch.check("heatmap")
        p.shot("xss-02-heatmap", element=".views-card")

        pg.click(".tok[data-pos='3']")  # select the <b>B</b> token for the per-token views
        for view in ("heads", "trajectory", "attention", "roles", "dataflow", "components"):
            open_view(p, view)
            watch.check(view)
            shown = watch.text(f"#view-{view}")
            if view in ("trajectory", "attention", "dataflow", "components"):
                assert BOLD in shown, f"{view}: {shown[:400]}"
            p.shot(f"xss-03-{view}", element=".views-card")

        # per-head lens: hover text names the pushed-up tokens
        open_view(p, "heads")
        hovers = " ".join(hover_plot(p, "#heads", b, h) for b in range(2) for h in range(4))
        assert "<img src=x" in hovers or BOLD in hovers
        watch.check("heads hover")

        # bertviz: the tokens are drawn by bertviz's own script in its iframe
        open_view(p, "bertviz")
        frame = next(f for f in pg.frames if "/bertviz/" in f.url)
        frame.wait_for_selector("svg text", timeout=60_000)
        texts = frame.eval_on_selector_all("svg text", "els => els.map((e) => e.textContent)")
        assert PAYLOAD in texts and BOLD in texts
        watch.check("bertviz")
        p.shot("xss-04-bertviz", element=".views-card")

        # beams: the tree (SVG) and the list
        open_view(p, "beams")
        pg.fill("#beam-width", "3")
        pg.fill("#beam-length", "4")
        pg.click("#beam-run")
        pg.wait_for_selector("#beam-list tbody tr", timeout=120_000)
        pg.wait_for_timeout(300)
        watch.check("beams")
        beams = watch.text("#view-beams")
        assert "<img src=x" in beams or BOLD in beams
        p.shot("xss-05-beams", full_page=True)

        # the experiments: run each, wait for its answer, read its tokens
        for view, setup, run, result in EXPERIMENTS:
            pg.click(f"#tab-{view}")
            pg.locator(f"#view-{view}").wait_for(state="visible")
            for selector, value in setup:
                pg.fill(selector, value)
            if view == "ablation":
                pg.click("#abl-grid button[data-b='0'][data-h='1']")
            pg.click(run)
            pg.wait_for_selector(result, timeout=180_000)
            pg.wait_for_timeout(400)
            watch.check(view)
            shown = watch.text(f"#view-{view}")
            assert "<img src=x" in shown or BOLD in shown, f"{view}: {shown[:300]}"
            p.shot(f"xss-06-{view}", element=".views-card")

        # docs: a document whose text is the payload
        pg.click("#learn-docs")
        pg.locator("#view-docs").wait_for(state="visible")
        pg.click(f"#view-docs a[data-doc='{DOC_SLUG}']", timeout=30_000)
        pg.wait_for_timeout(500)
        docs = watch.text("#view-docs")
        assert f"A token may read {PAYLOAD} or {BOLD}: it is text." in docs
        assert f"Heading {PAYLOAD}" in docs
        watch.check("docs")
        p.shot("xss-07-docs", element=".views-card")

        # chat: the endpoint answers with the payload; the question repeats it too
        pg.click("#learn-chat")
        pg.locator("#view-chat").wait_for(state="visible")
        pg.fill("#chat-question", f"What is the logit lens? {PAYLOAD}")
        pg.click("#chat-send")
        pg.wait_for_selector(  # answered (the first question also loads the index)
            ".chat-turn.assistant .chat-mode[data-mode], .chat-error", timeout=300_000
        )
        pg.wait_for_timeout(300)
        chat = watch.text("#view-chat")
        assert f"What is the logit lens? {PAYLOAD}" in chat
        assert pg.get_attribute(".chat-turn.assistant .chat-mode", "data-mode") == "endpoint"
        assert PAYLOAD in literal(pg.inner_text(".chat-turn.assistant .chat-answer"))
        watch.check("chat")
        p.shot("xss-08-chat", element=".views-card")
        assert not p.foreign
    finally:
        p.close()
