"""The Learn content: glossary schema and links, the 30 documents and their cross-links, and the
retrieval benchmark's questions."""

from __future__ import annotations

import json
import re
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTENT = ROOT / "src" / "layerscope" / "learn" / "content"
DOCS = CONTENT / "docs"
GLOSSARY = CONTENT / "glossary.json"
QUESTIONS = ROOT / "bench" / "data" / "retrieval_questions.json"

#: web view ids (web/js/views/*.js ``id``) plus "scrubber" for the layer scrubber and token strip
VIEWS = {
    "heatmap",
    "heads",
    "attention",
    "roles",
    "bertviz",
    "trajectory",
    "patching",
    "early",
    "dataflow",
    "components",
    "ablation",
    "steering",
    "beams",
    "attribution",
    "compare",
    "componentpatching",
    "glossary",
    "docs",
    "chat",
    "tours",
    "scrubber",
}
#: ids other parts of the project refer to (tooltips, tours, the chatbot)
REQUIRED_TERMS = {
    "ablation",
    "steering-vector",
    "logit-lens",
    "integrated-gradients",
    "attention-head",
    "residual-stream",
    "activation-patching",
    "beam-search",
    "kl-divergence",
    "cosine-similarity",
    "entropy",
    "rank",
    "lock-in-layer",
    "temperature",
    "head-roles",
    "induction-head",
    "mlp-neuron",
    "direct-logit-attribution",
    "pca-trajectory",
    "early-exit",
    "sub-layer-lens",
    "bertviz",
    "chat-template",
    "hook-point",
    "resid-mid",
    "zero-ablation",
    "mean-ablation",
    "component-patching",
    "restored-fraction",
    "actadd",
    "caa",
    "completeness",
    "baseline",
    "unembedding",
    "final-norm",
    "softcap",
    "tuned-lens",
    "superposition",
    "nanochat",
    "smollm2",
}
N_DOCS = 30
ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def strip_code(markdown: str) -> str:
    """The markdown without fenced code blocks (links and headings inside them do not count)."""
    return re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)


def load_docs() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md"))}


def headings(markdown: str) -> set[str]:
    return {anchor(m.group(1)) for m in re.finditer(r"^#{2,6}\s+(.+)$", strip_code(markdown), re.M)}


def links(markdown: str) -> list[str]:
    """Relative links of a document (external ones left out)."""
    return [
        t
        for t in LINK.findall(strip_code(markdown))
        if "://" not in t and not t.startswith("mailto:")
    ]


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    return load_docs()


@pytest.fixture(scope="module")
def terms() -> list[dict]:
    return json.loads(GLOSSARY.read_text(encoding="utf-8"))["terms"]


# --- glossary -------------------------------------------------------------------------------


def test_glossary_schema(terms):
    assert len(terms) >= 64
    for t in terms:
        assert set(t) >= {"id", "term", "short", "long", "related", "views", "docs"}, t.get("id")
        assert ID.match(t["id"]), t["id"]
        for key in ("term", "short", "long"):
            assert isinstance(t[key], str) and t[key].strip(), (t["id"], key)
        assert "\n" not in t["short"] and len(t["short"]) <= 160, t["id"]
        assert len(t["long"]) > len(t["short"]), t["id"]
        for key in ("related", "views", "docs"):
            assert isinstance(t[key], list) and all(isinstance(x, str) for x in t[key]), t["id"]


def test_glossary_ids_unique_and_required_present(terms):
    ids = [t["id"] for t in terms]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert set(ids) >= REQUIRED_TERMS, sorted(REQUIRED_TERMS - set(ids))
    names = [t["term"].lower() for t in terms]
    assert len(names) == len(set(names))


def test_glossary_references_resolve(terms, docs):
    ids = {t["id"] for t in terms}
    for t in terms:
        assert set(t["related"]) <= ids, (t["id"], set(t["related"]) - ids)
        assert t["id"] not in t["related"], t["id"]
        assert set(t["views"]) <= VIEWS, (t["id"], set(t["views"]) - VIEWS)
        assert set(t["docs"]) <= set(docs), (t["id"], set(t["docs"]) - set(docs))
        assert t["docs"], f"{t['id']} names no document"


def test_every_doc_is_named_by_some_term(terms, docs):
    named = {d for t in terms for d in t["docs"]}
    assert set(docs) - named <= {"welcome", "troubleshooting", "guided-experiments"}


# --- documents ------------------------------------------------------------------------------


def test_thirty_docs_of_the_right_size(docs):
    assert len(docs) == N_DOCS, sorted(docs)
    for slug, text in docs.items():
        assert ID.match(slug), slug
        assert text.startswith("# ") and not text.startswith("## "), slug
        assert len(re.findall(r"^## ", strip_code(text), re.M)) >= 2, slug
        words = len(text.split())
        assert 400 <= words <= 1500, (slug, words)


def test_links_resolve(docs):
    bad = []
    for slug, text in docs.items():
        for target in links(text):
            path, _, frag = target.partition("#")
            other = slug if not path else path.removesuffix(".md")
            unknown = (bool(path) and not path.endswith(".md")) or other not in docs
            if unknown or (frag and frag not in headings(docs[other])):
                bad.append((slug, target))
    assert not bad, bad


def test_every_doc_reachable_from_welcome(docs):
    seen, todo = {"welcome"}, deque(["welcome"])
    while todo:
        for target in links(docs[todo.popleft()]):
            path = target.partition("#")[0]
            other = path.removesuffix(".md")
            if path and other in docs and other not in seen:
                seen.add(other)
                todo.append(other)
    assert seen == set(docs), sorted(set(docs) - seen)
    welcome_links = {t.partition("#")[0].removesuffix(".md") for t in links(docs["welcome"])}
    assert set(docs) - {"welcome"} <= welcome_links


def test_every_doc_is_linked_from_another(docs):
    linked = {
        t.partition("#")[0].removesuffix(".md")
        for slug, text in docs.items()
        for t in links(text)
        if t.partition("#")[0] and t.partition("#")[0].removesuffix(".md") != slug
    }
    assert set(docs) <= linked, sorted(set(docs) - linked)


def test_anchor_slugs():
    assert anchor("Hook points: where layerscope looks") == "hook-points-where-layerscope-looks"
    assert (
        anchor("Softmax: turning scores into probabilities")
        == "softmax-turning-scores-into-probabilities"
    )
    assert anchor("`trace --json` output") == "trace---json-output"


# --- retrieval questions --------------------------------------------------------------------


def test_questions(docs):
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    assert isinstance(questions, list) and len(questions) >= 50
    texts = [q["q"].strip().lower() for q in questions]
    assert len(texts) == len(set(texts))
    titles = {text.splitlines()[0][2:].strip().lower() for text in docs.values()}
    for q in questions:
        assert set(q) == {"q", "docs"}, q
        assert q["q"].strip() and q["docs"], q
        assert set(q["docs"]) <= set(docs), (q["q"], set(q["docs"]) - set(docs))
        assert q["q"].strip().rstrip("?").lower() not in titles, q["q"]


# --- the web app's tooltips ------------------------------------------------------------------

WEB = ROOT / "src" / "layerscope" / "web"
TERM_ATTR = re.compile(r"""data-term=\\?["']([a-z0-9-]+)\\?["']""")
VIEW_TERM = re.compile(r"""^\s*term = "([a-z0-9-]+)";""", re.M)


def test_every_term_the_web_app_names_exists(terms):
    ids = {t["id"] for t in terms}
    named = {}
    for path in [*WEB.glob("*.html"), *WEB.glob("js/**/*.js")]:
        text = path.read_text(encoding="utf-8")
        for term in TERM_ATTR.findall(text) + VIEW_TERM.findall(text):
            named.setdefault(term, path.name)
    missing = {term: where for term, where in named.items() if term not in ids}
    assert named and not missing, missing
