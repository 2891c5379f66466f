"""The README's generated sections (protocol tables, lens statistics) match the code."""

from __future__ import annotations

from pathlib import Path

from layerscope.server import docs

README = Path(__file__).resolve().parent.parent / "README.md"


def test_generated_sections_are_current():
    text = README.read_text()
    assert docs.render(text) == text, "run: python -m layerscope.server.docs README.md"
    for name in docs.SECTIONS:
        assert f"<!-- generated:{name} -->" in text


def test_every_request_type_and_statistic_is_documented():
    from layerscope.engine.statistics import STATISTICS
    from layerscope.server.handlers import REGISTRY

    text = README.read_text()
    for rt in REGISTRY:
        assert f"| `{rt.type}` |" in text
    for s in STATISTICS:
        assert f"`lens.{s.name}`" in text
