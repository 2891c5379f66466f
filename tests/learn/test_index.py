"""Hybrid retrieval: the right document, the fusion rule, the cache and its rebuilds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from layerscope.errors import InputError
from layerscope.learn import index as ix
from layerscope.learn.index import RRF_K, Index, terms
from learn.conftest import QUESTIONS


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_the_right_document_comes_first(small_index, mode):
    for question, want in QUESTIONS:
        hits = small_index.search(question, 3, mode)
        top = hits[0].chunk
        assert want in (top.doc, top.heading.lower()), (mode, question, top)
        assert [h.rank for h in hits] == [1, 2, 3]
        plain = small_index.search(question, 3, mode, per_doc=None)
        assert all(a.score >= b.score for a, b in itertools.pairwise(plain))


def test_a_hit_is_a_citable_source(small_index):
    hit = small_index.search("What does an induction head do?", 1)[0]
    src = hit.source()
    assert set(src) == {"doc", "title", "heading", "anchor", "text", "score"}
    assert (src["doc"], src["title"], src["anchor"]) == (
        "attention",
        "Attention heads",
        "induction-heads",
    )
    assert "earlier copy" in src["text"]


def test_hybrid_is_reciprocal_rank_fusion(small_index):
    """Four rankings: the chunk's dense and BM25 scores, its document's dense and BM25 scores."""
    q = "temperature zero greedy"
    chunks = small_index.chunks
    qv = small_index.query_vector(q)
    dense, lexical = small_index.dense_scores(q), small_index.bm25_scores(q)
    docs = sorted({c.doc for c in chunks})
    doc_vec = {d: sum(small_index.embeddings[c.id] for c in chunks if c.doc == d) for d in docs}
    doc_dense = np.array([doc_vec[c.doc] @ qv / np.linalg.norm(doc_vec[c.doc]) for c in chunks])
    doc_lexical = small_index.doc_scores(q, qv)[1]
    assert doc_lexical[[c.doc == "sampling" for c in chunks]].min() > 0
    assert doc_lexical[[c.doc == "attention" for c in chunks]].max() == 0
    expected = np.zeros(len(chunks))
    for scores, lexical_kind in ((dense, 0), (doc_dense, 0), (lexical, 1), (doc_lexical, 1)):
        for i in range(len(chunks)):
            rank = 1 + int((scores > scores[i]).sum())  # equal scores share a rank
            if not lexical_kind or scores[i] > 0:
                expected[i] += 1 / (RRF_K + rank)
    hits = small_index.search(q, len(chunks), "hybrid", per_doc=None)
    np.testing.assert_allclose([h.score for h in hits], np.sort(expected)[::-1], rtol=1e-6)
    assert hits[0].chunk.id == int(np.argmax(expected))


def test_at_most_two_chunks_of_a_document_before_the_others(small_index):
    q = "attention heads: queries, keys and induction heads"
    plain = [h.chunk.doc for h in small_index.search(q, 4, per_doc=None)]
    spread = [h.chunk.doc for h in small_index.search(q, 4)]
    assert plain.count("attention") >= 3  # the cap matters for this question
    assert spread.count("attention") == 2 and spread[0] == "attention"


def test_terms_stem_and_drop_stop_words():
    assert terms("What are the Induction heads writing?") == ["induction", "head", "writ"]
    assert terms("probabilities sampled") == ["probability", "sampl"]


def test_bad_queries(small_index):
    with pytest.raises(InputError, match="mode"):
        small_index.search("x", 3, "fuzzy")
    with pytest.raises(InputError, match="empty"):
        small_index.search("   ", 3)
    assert small_index.search("zzzz qqqq", 2, "bm25")[0].score == 0.0


def test_cached_then_rebuilt_when_a_document_changes(docs_dir, private_cache):
    first = Index.load_or_build(docs_dir)
    assert first.built and len(first) > 0
    files = list((private_cache / "learn").glob("index-*.npz"))
    assert len(files) == 1
    again = Index.load_or_build(docs_dir)
    assert not again.built
    assert [c for c in again.chunks] == first.chunks
    np.testing.assert_array_equal(again.embeddings, first.embeddings)

    path = docs_dir / "sampling.md"
    path.write_text(path.read_text() + "\n## Beam search\n\nBeam search keeps several beams.\n")
    changed = Index.load_or_build(docs_dir)
    assert changed.built and len(changed) == len(first) + 1
    assert changed.search("beam search keeps several", 1)[0].chunk.anchor == "beam-search"
    assert list((private_cache / "learn").glob("index-*.npz")) != files  # stale one removed
    assert len(list((private_cache / "learn").glob("index-*.npz"))) == 1
    (docs_dir / "ablation.md").unlink()  # a removed document is a change too
    assert Index.load_or_build(docs_dir).built


def test_an_empty_knowledge_base(tmp_path):
    empty = Index.load_or_build(tmp_path / "none")
    assert len(empty) == 0 and empty.search("anything", 3) == []


def test_lazy_index_loads_once_in_the_background(docs_dir):
    lazy = ix.shared_index(docs_dir)
    assert ix.shared_index(docs_dir) is lazy
    lazy.start()
    index = lazy.get(timeout=300)
    assert lazy.ready and lazy.get() is index and len(index) > 0
    (docs_dir / "new.md").write_text("# New\n\n## Fresh\n\nA fresh section about beams.\n")
    changed = lazy.get(timeout=300)
    assert changed is not index and len(changed) == len(index) + 1
