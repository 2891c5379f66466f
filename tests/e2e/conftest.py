"""Browser tests: a real server on the real default model, driven by Debian's Chromium."""
# Module scope on purpose: Playwright's sync API keeps an event loop running while it is open,
# which would break every later test that calls asyncio.run().

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness import ARGS, CHROMIUM, LiveServer, Page


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")  # closed before other test files run
def real_model():
    import layerscope

    return layerscope.load(None, device="cpu")


@pytest.fixture(scope="module")  # closed before other test files run
def live_server(real_model):
    from layerscope.server.app import missing_vendor_files

    if missing := missing_vendor_files():
        pytest.fail(f"web vendor files missing ({', '.join(missing)}): run `make web`")
    with LiveServer(real_model) as server:
        yield server


@pytest.fixture(scope="module")  # closed before other test files run
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()
    assert not p.foreign, f"the page made non-local requests: {p.foreign}"
