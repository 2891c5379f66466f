"""The header's model picker: switch the server's model from the page; every page follows."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from harness import LiveServer, Page

from layerscope.server.models import LoaderModels
from tiny import tiny_model

COMPLETE = "window.layerscope && window.layerscope.store.current?.complete"
GEMMA_HINT = "not fetched: run `layerscope fetch gemma3-270m`"


def _broken():
    raise RuntimeError("weights damaged")


def _slow():
    """A model that takes a while to load (the page shows it loading)."""
    time.sleep(2.0)
    m = tiny_model("llama", seed=1)
    m.lens_model.info = replace(m.info, name="slow-llama")
    return m


@pytest.fixture(scope="module")
def tiny_server():
    models = LoaderModels(
        {
            "tiny-llama": lambda: tiny_model("llama"),
            "tiny-gpt2": lambda: tiny_model("gpt2"),
            "broken": _broken,
            "slow-llama": _slow,
        },
        missing={"gemma3-270m": GEMMA_HINT},
    )
    with LiveServer(tiny_model("llama"), models=models) as server:
        yield server


def options(p: Page) -> list[dict]:
    return p.page.eval_on_selector_all(
        "#model-picker option",
        "els => els.map(e => ({value: e.value, text: e.textContent, disabled: e.disabled}))",
    )


def run(p: Page) -> None:
    p.page.fill("#prompt", "The capital of France is")
    p.page.click("#run")
    p.page.wait_for_function(COMPLETE, timeout=60_000)


def open_page(browser, url: str, width: int) -> Page:
    p = Page(browser, width=width)
    p.page.goto(url)
    p.page.wait_for_selector("#run:not([disabled])", timeout=30_000)
    p.page.wait_for_function("document.querySelectorAll('#model-picker option').length === 5")
    return p


@pytest.mark.parametrize("width", [1280, 768])
def test_switching_models_from_the_header(browser, tiny_server, width):
    p = open_page(browser, tiny_server.url, width)
    other = open_page(browser, tiny_server.url, width)
    try:
        pg = p.page
        opts = options(p)
        assert [o["value"] for o in opts] == [
            "tiny-llama",
            "tiny-gpt2",
            "broken",
            "slow-llama",
            "gemma3-270m",
        ]
        assert pg.input_value("#model-picker") == "tiny-llama"
        gemma = opts[-1]
        assert gemma["disabled"] and GEMMA_HINT in gemma["text"]
        assert pg.get_attribute(".model-picker", "data-term")
        run(p)
        assert pg.is_visible(".scrub-card")

        pg.select_option("#model-picker", "tiny-gpt2")
        pg.wait_for_selector(".model-notice", state="visible", timeout=30_000)
        notice = pg.inner_text(".model-notice")
        assert "Now running tiny-gpt2" in notice and "Traces of tiny-llama were cleared" in notice
        assert pg.evaluate("window.layerscope.store.current") is None
        assert not pg.is_visible(".scrub-card")  # the old model's trace is gone
        assert pg.input_value("#model-picker") == "tiny-gpt2"
        pg.mouse.move(5, 600)  # no hover tooltip over the shot
        p.shot(f"model-picker-switched-{width}")
        # the other page was told too, without asking
        other.page.wait_for_function(
            "document.getElementById('model-picker').value === 'tiny-gpt2'", timeout=10_000
        )
        assert "Now running tiny-gpt2" in other.page.inner_text(".model-notice")

        # a failed load: a clear error, and the picker stays on the model still served
        pg.select_option("#model-picker", "broken")
        pg.wait_for_selector(".notice.error", state="visible", timeout=30_000)
        error = pg.inner_text(".notice.error")
        assert "Could not switch models" in error and "could not load broken" in error
        assert pg.input_value("#model-picker") == "tiny-gpt2"
        p.shot(f"model-picker-failed-{width}")
        pg.click(".notice.error button")

        run(p)  # and the new model traces
        assert pg.evaluate("window.layerscope.store.current.nLayers") == 3

        # while a model loads, the page says so and runs nothing
        pg.select_option("#model-picker", "slow-llama")
        pg.wait_for_selector(".model-picker .switching", state="visible")
        assert "loading slow-llama" in pg.inner_text(".model-picker .switching")
        assert pg.is_disabled("#run") and pg.is_disabled("#model-picker")
        p.shot(f"model-picker-loading-{width}")
        pg.wait_for_selector(".model-notice", state="visible", timeout=30_000)
        assert "Now running slow-llama" in pg.inner_text(".model-notice")
        assert pg.is_enabled("#model-picker")

        pg.select_option("#model-picker", "tiny-llama")  # back, for the next width
        pg.wait_for_function(
            "document.querySelector('.model-notice')?.textContent.includes('tiny-llama')"
        )
        assert not p.errors and not other.errors, (p.errors, other.errors)
        assert not p.foreign and not other.foreign
    finally:
        p.close()
        other.close()
