"""The knowledge base: markdown documents, their headings, and the chunks retrieval indexes.

A document is ``docs/<slug>.md`` whose first line is ``# Title``; ``##`` (and deeper) headings
split it into sections. Anchors follow GitHub's rule (lower case, punctuation dropped, spaces to
hyphens, ``-1``, ``-2`` … on repeats), so a link ``[x](other.md#some-heading)`` and a citation's
``anchor`` name the same place.

Chunks are sections (``##`` and the ``###`` inside them), cut to at most ``max_words`` words with
``overlap`` words repeated between the pieces of a long section, each keeping its document's
slug and title and its section's heading and anchor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerscope.errors import InputError

CONTENT_DIR = Path(__file__).resolve().parent / "content"
DOCS_DIR = CONTENT_DIR / "docs"
MAX_WORDS = 160
OVERLAP = 40

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Heading:
    """One heading of a document (level 1 is the title)."""

    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Doc:
    """One markdown document of the knowledge base."""

    slug: str
    title: str
    markdown: str
    headings: tuple[Heading, ...]


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: a section of a document, or a piece of a long one."""

    id: int
    doc: str  # slug
    title: str  # the document's title
    heading: str  # the section's heading ('' for the text before the first ``##``)
    anchor: str  # the section's anchor ('' = the top of the document)
    text: str  # the passage as written (markdown)

    def indexed_text(self) -> str:
        """What retrieval sees: the passage with its document title and section heading."""
        where = f"{self.title}: {self.heading}" if self.heading else self.title
        return f"{where}\n{plain_text(self.text)}"


def plain_text(markdown: str) -> str:
    """Markdown reduced to its words: links to their text, emphasis and code marks dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"[`*_]{1,3}", "", text)
    text = re.sub(r"^\s{0,3}(#{1,6}|>|[-+*]|\d+\.)\s+", "", text, flags=re.M)
    return text


def anchor_of(text: str, seen: dict[str, int] | None = None) -> str:
    """GitHub's heading anchor of ``text``; with ``seen``, repeats get ``-1``, ``-2``, …"""
    base = plain_text(text).strip().lower()
    base = re.sub(r"[^\w\- ]", "", base).replace(" ", "-")
    if seen is None:
        return base
    n = seen.get(base, 0)
    seen[base] = n + 1
    return base if n == 0 else f"{base}-{n}"


def _lines_outside_code(markdown: str) -> Iterable[tuple[str, bool]]:
    """Each line, and whether it lies inside a fenced code block."""
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            yield line, True
            continue
        yield line, fenced


def parse_doc(slug: str, markdown: str) -> Doc:
    """A document from its slug and text (InputError if it does not start with ``# Title``)."""
    if not _SLUG.match(slug):
        raise InputError(f"bad document slug {slug!r}: lower-case letters, digits and hyphens")
    first = markdown.lstrip("\ufeff").lstrip().splitlines()[:1]
    m = _HEADING.match(first[0]) if first else None
    if m is None or len(m.group(1)) != 1:
        raise InputError(f"document {slug!r} must start with a '# Title' line")
    seen: dict[str, int] = {}
    headings = []
    for line, code in _lines_outside_code(markdown):
        h = None if code else _HEADING.match(line)
        if h:
            text = plain_text(h.group(2)).strip()
            headings.append(Heading(len(h.group(1)), text, anchor_of(h.group(2), seen)))
    return Doc(slug=slug, title=headings[0].text, markdown=markdown, headings=tuple(headings))


def load_docs(docs_dir: str | Path | None = None) -> list[Doc]:
    """Every ``*.md`` of ``docs_dir`` (default: the packaged content), sorted by slug."""
    directory = Path(docs_dir) if docs_dir is not None else DOCS_DIR
    if not directory.is_dir():
        return []
    return [
        parse_doc(p.stem, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.md"))
    ]


def sections(doc: Doc) -> list[tuple[str, str, str]]:
    """(heading, anchor, text) of each ``##`` section; ``###`` stay inside their section. The
    text before the first ``##`` is a section with an empty heading and anchor."""
    out: list[tuple[str, str, str]] = []
    heading, anchor, body = "", "", []
    seen: dict[str, int] = {}
    for line, code in _lines_outside_code(doc.markdown):
        h = None if code else _HEADING.match(line)
        if h:
            level, this_anchor = len(h.group(1)), anchor_of(h.group(2), seen)
            if level == 1:
                continue  # the title
            if level == 2:
                out.append((heading, anchor, "\n".join(body).strip()))
                heading, anchor, body = plain_text(h.group(2)).strip(), this_anchor, []
                continue
        body.append(line)
    out.append((heading, anchor, "\n".join(body).strip()))
    return [s for s in out if s[2]]


def split_words(text: str, max_words: int, overlap: int) -> list[str]:
    """``text`` in pieces of at most ``max_words`` words, each after the first starting with the
    last ``overlap`` words of the one before. A text within the cap comes back as written; a
    longer one is cut at a paragraph end where one falls in the second half of the window."""
    if len(text.split()) <= max_words:
        return [text]
    words: list[str] = []
    starts: set[int] = set()  # indices of words that begin a paragraph
    for para in re.split(r"\n\s*\n", text):
        if para.strip():
            starts.add(len(words))
            words.extend(para.split())
    pieces, s = [], 0
    while True:
        e = min(s + max_words, len(words))
        if e < len(words):
            e = max((b for b in starts if s + max_words // 2 < b <= e), default=e)
        piece = ""
        for i in range(s, e):
            piece += ("\n\n" if i in starts and i > s else " " if i > s else "") + words[i]
        pieces.append(piece)
        if e == len(words):
            return pieces
        s = max(e - overlap, s + 1)


def chunks(
    docs: Iterable[Doc] | None = None, max_words: int = MAX_WORDS, overlap: int = OVERLAP
) -> list[Chunk]:
    """The passages retrieval indexes, in document order (default: the packaged documents)."""
    if overlap >= max_words:
        raise InputError("the overlap must be smaller than the chunk size")
    out: list[Chunk] = []
    for doc in load_docs() if docs is None else docs:
        for heading, anchor, text in sections(doc):
            for piece in split_words(text, max_words, overlap):
                out.append(Chunk(len(out), doc.slug, doc.title, heading, anchor, piece))
    return out


def load_json(name: str, content_dir: str | Path | None = None) -> Any | None:
    """A JSON file of the content directory (``glossary.json``, ``tours.json``), or None."""
    path = (Path(content_dir) if content_dir is not None else CONTENT_DIR) / name
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
