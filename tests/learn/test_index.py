"""Hybrid retrieval: the right document, the fusion rule, the cache and its rebuilds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from layerscope.errors import InputError
from layerscope.learn import index as ix
from layerscope.learn.index import SECOND_WEIGHT, Index, fuse, standardize, terms
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
    # (not "What does an induction head do?": the fixture's second, near-empty "Induction heads"
    # section ties with the real one on that question)
    hit = small_index.search("How does an induction head continue repeated text?", 1)[0]
    src = hit.source()
    assert set(src) == {"doc", "title", "heading", "anchor", "text", "score"}
    assert (src["doc"], src["title"], src["anchor"]) == (
        "attention",
        "Attention heads",
        "induction-heads",
    )
    assert "earlier copy" in src["text"]


def z(x):
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / x.std()


def test_hybrid_ranks_documents_by_their_standardised_scores(small_index):
    """Four document scores (best + half the second-best chunk, dense and BM25; the mean chunk
    embedding; BM25 over the whole document), each z-scored over the documents, summed; a
    document's chunks follow it in order of their own z-scored dense + BM25 scores."""
    q = "temperature zero greedy"
    chunks = small_index.chunks
    qv = small_index.query_vector(q)
    dense, lexical = small_index.dense_scores(q), small_index.bm25_scores(q)
    docs = list(dict.fromkeys(c.doc for c in chunks))

    def top_two(scores, doc):
        best = [*sorted((scores[c.id] for c in chunks if c.doc == doc), reverse=True), 0.0]
        return best[0] + SECOND_WEIGHT * best[1]

    mean_vec = {d: sum(small_index.embeddings[c.id] for c in chunks if c.doc == d) for d in docs}
    whole = ix._Bm25(
        [terms(" ".join(c.indexed_text() for c in chunks if c.doc == d)) for d in docs]
    )
    doc_score = dict(
        zip(
            docs,
            z([top_two(dense, d) for d in docs])
            + z([mean_vec[d] @ qv / np.linalg.norm(mean_vec[d]) for d in docs])
            + z([top_two(lexical, d) for d in docs])
            + z(whole.scores(terms(q))),
            strict=True,
        )
    )
    own = z(dense) + z(lexical)
    expected = sorted(chunks, key=lambda c: (-doc_score[c.doc], -own[c.id]))
    hits = small_index.search(q, len(chunks), "hybrid", per_doc=None)
    assert [h.chunk.id for h in hits] == [c.id for c in expected]
    np.testing.assert_allclose(
        [h.score for h in hits], [doc_score[c.doc] for c in expected], rtol=1e-5
    )
    assert hits[0].chunk.doc == "sampling" and hits[0].chunk.anchor == "temperature"


def test_a_documents_second_best_chunk_counts_for_half():
    chunks = [ix.kb.Chunk(i, d, d, "", "", "x") for i, d in enumerate("aabbbc")]
    index = Index(chunks, np.eye(6, 384, dtype=np.float32), built=False)
    scores = np.array([1.0, 3.0, 2.0, 0.0, 4.0, 5.0])
    np.testing.assert_allclose(index.by_doc(scores), [3 + SECOND_WEIGHT, 4 + 2 * SECOND_WEIGHT, 5])


def test_fusion_sums_z_scores_and_ignores_a_constant_list():
    np.testing.assert_allclose(standardize([1.0, 2.0, 3.0]), [-1.2247449, 0.0, 1.2247449])
    np.testing.assert_array_equal(standardize([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0])
    a, b = np.array([1.0, 5.0, 3.0]), np.array([10.0, 0.0, 40.0])
    np.testing.assert_allclose(fuse([a, b, np.zeros(3)]), z(a) + z(b))
    np.testing.assert_allclose(fuse([a, 100 * a + 7]), 2 * z(a))  # scale and shift drop out


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
    unknown = small_index.search("zzzz qqqq", 3)  # hybrid: no BM25 evidence, dense alone
    assert len(unknown) == 3 and all(np.isfinite(h.score) for h in unknown)


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
