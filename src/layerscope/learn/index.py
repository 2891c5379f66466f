"""Hybrid retrieval over the knowledge base's chunks: dense (MiniLM), BM25, and their fusion.

Dense: every chunk's embedding (:mod:`layerscope.learn.embed`, unit vectors) in one numpy matrix;
a query scores by cosine (a matrix-vector product). Lexical: BM25 (``bm25s``, k1 = 1.5, b = 0.75)
over lower-cased word tokens with English stop words removed and a light suffix stemmer.
Hybrid: the knowledge base answers with documents, so hybrid search ranks documents first and
then their chunks. A document has four scores: its best chunk's dense score plus half its second
best's (``SECOND_WEIGHT``), the same for BM25, the cosine of the query with the mean of its
chunks' embeddings (renormalised), and BM25 over all its chunks' text as one document. Each of
the four is standardised over the documents (z-score: minus the mean, over the standard
deviation) and the four are summed with equal weights (score-based fusion; it replaced
reciprocal rank fusion, which ranked the benchmark's documents worse on both halves of its
questions, see ``bench/bench_retrieval.py --split``). A document's chunks follow it, ordered by
the sum of their own standardised dense and BM25 scores; a hit's score is its document's.
The second-best chunk counts so that a document that treats the question in two sections beats
one that mentions it once; the whole-document scores let a question whose words spread over
several sections still find it.

The index is built once and cached in the user cache (``<cache>/learn/``, see
:func:`layerscope.paths.cache_root`) under a hash of the documents' bytes, the chunking
settings and the index version; a changed, added or removed document means a new hash, so
the next :meth:`Index.load_or_build` rebuilds it (and removes the stale file).
The cached file holds only the chunks and their embeddings; BM25 and the fusion above are
set up at load and search time, so their settings need no part in the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from layerscope.errors import InputError
from layerscope.learn import kb
from layerscope.paths import cache_root

INDEX_VERSION = 1
SECOND_WEIGHT = 0.5  # a document's chunk evidence: its best chunk's score + this × its second's
PER_DOC = 2  # chunks of one document before the other documents' next ones
Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")

_STOP_WORDS = (
    "a an and are as at be been but by can could do does did for from had has have how i if in "
    "into is it its it's me my no not of on or our so such than that the their them then there "
    "these they this those to was we were what when where which who why will with would you your "
    "about after before also just more most other over only same some very"
)
_STOP = frozenset(_STOP_WORDS.split())


def _stem(word: str) -> str:
    """A light English suffix stripper (plurals, -ing, -ed), the same for queries and chunks."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    return word


def terms(text: str) -> list[str]:
    """BM25 tokens of ``text``: lower-cased words and numbers, stop words dropped, stemmed."""
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk and its score under the search's mode (higher is better)."""

    chunk: kb.Chunk
    score: float
    rank: int  # 1-based

    def source(self) -> dict:
        """The chunk as a cited source: doc, title, heading, anchor, text, score."""
        c = self.chunk
        return {
            "doc": c.doc,
            "title": c.title,
            "heading": c.heading,
            "anchor": c.anchor,
            "text": c.text,
            "score": round(float(self.score), 6),
        }


def content_hash(docs_dir: Path, max_words: int, overlap: int) -> str:
    """A hash of every document's name and bytes plus the settings that shape the index."""
    h = hashlib.sha256(f"v{INDEX_VERSION} {max_words} {overlap}\n".encode())
    for path in sorted(docs_dir.glob("*.md")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def cache_dir() -> Path:
    """Where indexes are cached."""
    return cache_root() / "learn"


class Index:
    """The chunks, their embeddings [n, 384] and a BM25 index over them."""

    def __init__(self, chunks: list[kb.Chunk], embeddings: np.ndarray, *, built: bool) -> None:
        if len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk")
        self.chunks = chunks
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.built = built  # True when this process embedded the chunks, False when cached
        self._df: dict[str, int] = {}
        docs = list(dict.fromkeys(c.doc for c in chunks))
        self._doc_of = np.array([docs.index(c.doc) for c in chunks], dtype=np.int64)
        self._doc_emb = np.zeros((len(docs), self.embeddings.shape[1]), dtype=np.float32)
        np.add.at(self._doc_emb, self._doc_of, self.embeddings)
        self._doc_emb /= np.maximum(np.linalg.norm(self._doc_emb, axis=1, keepdims=True), 1e-12)
        tokenized = [terms(c.indexed_text()) for c in chunks]
        per_doc: list[list[str]] = [[] for _ in docs]
        for toks, d in zip(tokenized, self._doc_of, strict=True):
            per_doc[d] += toks
            for t in set(toks):
                self._df[t] = self._df.get(t, 0) + 1
        self._bm25 = _Bm25(tokenized)
        self._doc_bm25 = _Bm25(per_doc)

    # ------------------------------------------------------------------ build / cache
    @classmethod
    def build(
        cls,
        docs_dir: str | Path | None = None,
        max_words: int = kb.MAX_WORDS,
        overlap: int = kb.OVERLAP,
    ) -> Index:
        """Chunk and embed every document of ``docs_dir`` (no cache involved)."""
        from layerscope.learn.embed import default_embedder

        chunks = kb.chunks(kb.load_docs(docs_dir), max_words, overlap)
        emb = (
            default_embedder().encode([c.indexed_text() for c in chunks])
            if chunks
            else np.zeros((0, 384), np.float32)
        )
        return cls(chunks, emb, built=True)

    @classmethod
    def load_or_build(
        cls,
        docs_dir: str | Path | None = None,
        *,
        cache: str | Path | None = None,
        max_words: int = kb.MAX_WORDS,
        overlap: int = kb.OVERLAP,
    ) -> Index:
        """The cached index of ``docs_dir`` (default: the packaged documents), built and cached
        first if the documents changed since (or if there is none)."""
        directory = Path(docs_dir).resolve() if docs_dir is not None else kb.DOCS_DIR
        where = Path(cache) if cache is not None else cache_dir()
        key = hashlib.sha256(str(directory).encode()).hexdigest()[:8]
        path = where / f"index-{key}-{content_hash(directory, max_words, overlap)}.npz"
        if path.is_file():
            try:
                return cls._read(path)
            except (OSError, ValueError, KeyError):
                pass  # unreadable: build again
        index = cls.build(directory, max_words, overlap)
        where.mkdir(parents=True, exist_ok=True)
        for stale in where.glob(f"index-{key}-*.npz"):
            stale.unlink(missing_ok=True)
        index._write(path)
        return index

    def _write(self, path: Path) -> None:
        meta = json.dumps([asdict(c) for c in self.chunks], ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, embeddings=self.embeddings, chunks=np.array(meta))
        os.replace(tmp, path)

    @classmethod
    def _read(cls, path: Path) -> Index:
        with np.load(path, allow_pickle=False) as data:
            chunks = [kb.Chunk(**c) for c in json.loads(str(data["chunks"]))]
            return cls(chunks, data["embeddings"], built=False)

    # ------------------------------------------------------------------ search
    def __len__(self) -> int:
        return len(self.chunks)

    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding (unit length)."""
        from layerscope.learn.embed import default_embedder

        return default_embedder().encode([query])[0]

    def dense_scores(self, query: str | np.ndarray) -> np.ndarray:
        """Cosine similarity of ``query`` (text or its embedding) with every chunk."""
        q = self.query_vector(query) if isinstance(query, str) else query
        return self.embeddings @ q

    def bm25_scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (0 where no term matches)."""
        return self._bm25.scores(terms(query))

    def by_doc(self, chunk_scores: np.ndarray) -> np.ndarray:
        """Each document's best chunk score plus ``SECOND_WEIGHT`` × its second best."""
        order = np.lexsort((-chunk_scores, self._doc_of))  # by document, best chunk first
        doc, value = self._doc_of[order], chunk_scores[order]
        first = np.r_[True, doc[1:] != doc[:-1]]
        second = np.r_[False, first[:-1]] & ~first
        out = np.zeros(len(self._doc_emb), dtype=np.float64)
        out[doc[first]] = value[first]
        out[doc[second]] += SECOND_WEIGHT * value[second]
        return out

    def hybrid_scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Per chunk: its document's fused score and its own (the sum of its standardised dense
        and BM25 scores), which orders the chunks of one document."""
        q, query_terms = self.query_vector(query), terms(query)
        dense, lexical = self.dense_scores(q), self._bm25.scores(query_terms)
        doc = fuse(
            [
                self.by_doc(dense),
                self._doc_emb @ q,
                self.by_doc(lexical),
                self._doc_bm25.scores(query_terms),
            ]
        )
        return doc[self._doc_of], fuse([dense, lexical])

    def search(
        self, query: str, k: int = 5, mode: Mode = "hybrid", per_doc: int | None = PER_DOC
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first.

        At most ``per_doc`` chunks of one document come before every document's next best
        chunk (so a few passages cover more than one document); chunks held back this way fill
        the remaining places in score order. The documents' order is the same either way.
        """
        if mode not in MODES:
            raise InputError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        if not query.strip():
            raise InputError("the question is empty")
        if not self.chunks or k < 1:
            return []
        if mode == "hybrid":
            scores, own = self.hybrid_scores(query)
            order = np.lexsort((-own, -scores))  # by document, then by the chunk's own score
        else:
            scores = self.dense_scores(query) if mode == "dense" else self.bm25_scores(query)
            order = np.argsort(-scores, kind="stable")
        if per_doc is not None:
            seen: dict[str, int] = {}
            first, later = [], []
            for i in order:
                doc = self.chunks[i].doc
                seen[doc] = seen.get(doc, 0) + 1
                (first if seen[doc] <= per_doc else later).append(i)
            order = np.array(first + later, dtype=np.int64)
        return [Hit(self.chunks[i], float(scores[i]), r + 1) for r, i in enumerate(order[:k])]

    def idf(self, term: str) -> float:
        """Inverse document frequency of a BM25 term over the chunks (0 for unknown terms)."""
        df = self._df.get(term, 0)
        if not df:
            return 0.0
        n = len(self.chunks)
        return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))


class _Bm25:
    """BM25 over token lists (``bm25s``); scores are 0 for a query with no known term."""

    def __init__(self, docs: list[list[str]]) -> None:
        import bm25s

        self.n = len(docs)
        self._index = bm25s.BM25(k1=1.5, b=0.75) if docs else None
        if self._index is not None:
            self._index.index(docs, show_progress=False)
        self.vocab = self._index.vocab_dict if self._index is not None else {}

    def scores(self, query_terms: list[str]) -> np.ndarray:
        known = [t for t in query_terms if t in self.vocab]
        if self._index is None or not known:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self._index.get_scores(known), dtype=np.float32)


def standardize(scores: np.ndarray) -> np.ndarray:
    """``scores`` minus their mean, over their standard deviation (all 0 when they are equal)."""
    scores = np.asarray(scores, dtype=np.float64)
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def fuse(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Score-based fusion of score vectors over the same items: the sum of their z-scores."""
    return np.sum([standardize(s) for s in scores], axis=0)


class LazyIndex:
    """An index loaded (or built) once, on a background thread, the first time it is wanted.

    A server holds one: the first ask (or docs request) starts the load, other requests go on,
    and :meth:`get` waits for it. A failed load is reported to every waiter and retried on the
    next :meth:`get`; so is a load whose documents have changed since (their content hash, a
    few milliseconds to check).
    """

    def __init__(self, docs_dir: str | Path | None = None) -> None:
        self.docs_dir = docs_dir
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._index: Index | None = None
        self._hash = ""
        self._error: BaseException | None = None

    def _current_hash(self) -> str:
        directory = Path(self.docs_dir) if self.docs_dir is not None else kb.DOCS_DIR
        return content_hash(directory, kb.MAX_WORDS, kb.OVERLAP)

    @property
    def ready(self) -> bool:
        return self._index is not None

    def start(self) -> None:
        """Begin loading in the background (no-op once started or loaded)."""
        with self._lock:
            if self._index is not None or (self._thread and self._thread.is_alive()):
                return
            self._error = None
            self._thread = threading.Thread(target=self._load, name="layerscope-kb", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            digest = self._current_hash()
            self._index, self._hash = Index.load_or_build(self.docs_dir), digest
        except BaseException as exc:  # handed to whoever waits
            self._error = exc

    def get(self, timeout: float | None = None) -> Index:
        """The index, waiting up to ``timeout`` seconds for the load (TimeoutError past it)."""
        if self._index is not None:
            if self._hash == self._current_hash():
                return self._index
            with self._lock:
                self._index = None  # the documents changed: load again
        self.start()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError("the knowledge base is still being indexed")
        if self._index is None:
            error = self._error or RuntimeError("the knowledge base failed to load")
            raise error
        return self._index


_SHARED: dict[Path, LazyIndex] = {}
_SHARED_LOCK = threading.Lock()


def shared_index(docs_dir: str | Path | None = None) -> LazyIndex:
    """The process's one lazily loaded index of ``docs_dir`` (default: the packaged documents)."""
    key = Path(docs_dir).resolve() if docs_dir is not None else kb.DOCS_DIR.resolve()
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = LazyIndex(key)
        return _SHARED[key]
