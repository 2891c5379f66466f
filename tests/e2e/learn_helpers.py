"""Shared helpers of the Learn side's browser tests (glossary, docs, chat, tooltips, tours)."""

from __future__ import annotations

import json
from pathlib import Path

from harness import Page

CONTENT = Path(__file__).parents[2] / "src" / "layerscope" / "learn" / "content"
COMPLETE = "window.layerscope && window.layerscope.store.current?.complete"


def glossary_ids() -> set[str]:
    """The ids of glossary.json's terms."""
    return {t["id"] for t in json.loads((CONTENT / "glossary.json").read_text())["terms"]}


def doc_slugs() -> set[str]:
    return {p.stem for p in (CONTENT / "docs").glob("*.md")}


def tours() -> list[dict]:
    return json.loads((CONTENT / "tours.json").read_text())["tours"]


def open_page(p: Page, url: str) -> None:
    p.page.goto(url)
    p.page.wait_for_selector("#run:not([disabled])", timeout=30_000)


def run_prompt(p: Page, prompt: str, generate: int = 0) -> None:
    pg = p.page
    pg.fill("#prompt", prompt)
    pg.fill("#generate", str(generate))
    pg.click("#run")
    pg.wait_for_function(COMPLETE, timeout=120_000)
    pg.wait_for_timeout(200)


def open_learn(p: Page, view: str) -> None:
    """Open a Learn view from the header."""
    p.page.click(f"#learn-{view}")
    p.page.locator(f"#view-{view}").wait_for(state="visible")
