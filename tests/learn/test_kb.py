"""Documents, headings and anchors, sections and chunks."""

from __future__ import annotations

import itertools
import re

import pytest

from layerscope.errors import InputError
from layerscope.learn import kb
from learn.conftest import DOCS


def test_title_headings_and_github_anchors():
    doc = kb.parse_doc("attention", DOCS["attention"])
    assert doc.title == "Attention heads"
    assert [(h.level, h.anchor) for h in doc.headings] == [
        (1, "attention-heads"),
        (2, "queries-and-keys"),
        (2, "induction-heads"),
        (2, "induction-heads-1"),
    ]
    assert kb.anchor_of("What the lens is *not*: a `cause`!") == "what-the-lens-is-not-a-cause"
    assert kb.anchor_of("Top-k sampling") == "top-k-sampling"


def test_headings_inside_code_blocks_do_not_count():
    doc = kb.parse_doc("sampling", DOCS["sampling"])
    assert [h.text for h in doc.headings] == [
        "Choosing the next token",
        "Temperature",
        "Top-k sampling",
    ]


def test_bad_documents_are_refused():
    with pytest.raises(InputError, match="Title"):
        kb.parse_doc("no-title", "Just text.\n\n## A section\n")
    with pytest.raises(InputError, match="slug"):
        kb.parse_doc("../etc", "# T\n")


def test_sections_keep_heading_and_anchor(docs_dir):
    docs = {d.slug: d for d in kb.load_docs(docs_dir)}
    assert sorted(docs) == sorted(DOCS)
    secs = kb.sections(docs["logit-lens"])
    assert [(h, a) for h, a, _ in secs] == [
        ("", ""),
        ("The recipe", "the-recipe"),
        ("Reading the heatmap", "reading-the-heatmap"),
    ]
    assert secs[1][2].startswith("Take the residual stream")


def test_long_sections_are_cut_with_overlap():
    text = "\n\n".join(" ".join(f"p{j}w{i}" for i in range(70)) for j in range(5))
    pieces = kb.split_words(text, 160, 40)
    assert len(pieces) > 1
    assert all(len(p.split()) <= 160 for p in pieces)
    for a, b in itertools.pairwise(pieces):
        assert a.split()[-40:] == b.split()[:40]  # the overlap
    words = [w for p in pieces for w in p.split()]
    assert set(words) == set(text.split())  # nothing lost
    assert kb.split_words("short text", 160, 40) == ["short text"]


def test_chunks_carry_doc_title_heading_anchor(docs_dir):
    long_doc = "# Long\n\n## Only section\n\n" + " ".join(f"w{i}" for i in range(500))
    (docs_dir / "long.md").write_text(long_doc)
    chunks = kb.chunks(kb.load_docs(docs_dir), max_words=100, overlap=20)
    assert [c.id for c in chunks] == list(range(len(chunks)))
    long = [c for c in chunks if c.doc == "long"]
    assert len(long) >= 5 and {(c.title, c.heading, c.anchor) for c in long} == {
        ("Long", "Only section", "only-section")
    }
    rec = next(c for c in chunks if c.anchor == "the-recipe")
    assert (rec.doc, rec.title, rec.heading) == ("logit-lens", "The logit lens", "The recipe")
    assert rec.indexed_text().startswith("The logit lens: The recipe\n")
    with pytest.raises(InputError):
        kb.chunks([], max_words=10, overlap=10)


def test_packaged_content_links_resolve():
    """Every link between packaged documents names an existing document and anchor."""
    docs = {d.slug: d for d in kb.load_docs()}
    if not docs:
        pytest.skip("no packaged documents yet")
    anchors = {slug: {h.anchor for h in d.headings} | {""} for slug, d in docs.items()}
    bad = []
    for slug, d in docs.items():
        for target, anchor in re.findall(r"\]\(([a-z0-9-]+)\.md(?:#([^)\s]*))?\)", d.markdown):
            if target not in anchors or (anchor or "") not in anchors[target]:
                bad.append(f"{slug}: {target}.md#{anchor}")
    assert not bad, bad
