"""Retrieval quality of the knowledge base: recall@3 and MRR for dense, BM25 and hybrid.

    python bench/bench_retrieval.py                  # readable table
    python bench/bench_retrieval.py --json out.json  # the same figures as JSON
    python bench/bench_retrieval.py --k 3 --questions bench/data/retrieval_questions.json
    python bench/bench_retrieval.py --split           # also each half of the questions

Each question of ``bench/data/retrieval_questions.json`` (``[{"q": ..., "docs": [slug, ...]}]``)
lists the documents that answer it. The index (``layerscope.learn.index``, the packaged documents,
the cached index when it is current) ranks chunks; the chunk ranking becomes a document ranking
by each document's best chunk (first appearance), which is what is scored:

- recall@k: the share of a question's documents among the first k documents, averaged over
  questions (a question with two documents and one of them in the top k scores 0.5);
- hit@k: the share of questions with at least one of their documents in the top k;
- MRR: the mean over questions of 1 / rank of the first relevant document (0 if none is ranked);
- chunk hit@k: the share of questions whose top k *chunks* include one from a relevant document
  (what the chat actually puts in front of the model).

``--split`` also reports two fixed halves of the questions: "tune" (even positions in the file,
0, 2, 4, ...) and "held-out" (odd positions). A retrieval setting is chosen on the tune half and
kept only if it helps the held-out half too, so the figures are not fitted to the questions.

The search time is the median time of one ``search()`` call (the query embedding included).
No network is used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from layerscope.learn.index import MODES, Index

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "data" / "retrieval_questions.json"


def doc_ranking(index: Index, question: str, mode: str) -> tuple[list[str], list[str], float]:
    """Documents in order of their best chunk, the chunks' documents, and the search seconds."""
    t0 = time.perf_counter()
    hits = index.search(question, len(index), mode)
    dt = time.perf_counter() - t0
    chunk_docs = [h.chunk.doc for h in hits]
    return list(dict.fromkeys(chunk_docs)), chunk_docs, dt


HALVES = {"tune": slice(0, None, 2), "held-out": slice(1, None, 2)}


def score_question(index: Index, item: dict, mode: str, k: int) -> dict:
    """One question's recall@k, hit@k, reciprocal rank and chunk hit@k, and the search time."""
    want = set(item["docs"])
    docs, chunk_docs, dt = doc_ranking(index, item["q"], mode)
    top = set(docs[:k])
    rank = next((i for i, d in enumerate(docs, 1) if d in want), None)
    return {
        f"recall@{k}": len(want & top) / len(want),
        f"hit@{k}": float(bool(want & top)),
        "mrr": 1.0 / rank if rank else 0.0,
        f"chunk_hit@{k}": float(bool(want & set(chunk_docs[:k]))),
        "seconds": dt,
        "miss": None if want & top else {"q": item["q"], "want": sorted(want), "got": docs[:k]},
    }


def summarize(rows: list[dict], k: int) -> dict:
    """The mean of each measure over ``rows``, the median search time and the misses."""
    out = {m: statistics.fmean(r[m] for r in rows) for m in (f"recall@{k}", f"hit@{k}", "mrr")}
    out[f"chunk_hit@{k}"] = statistics.fmean(r[f"chunk_hit@{k}"] for r in rows)
    out["search_ms_median"] = 1000 * statistics.median(r["seconds"] for r in rows)
    out["misses"] = [r["miss"] for r in rows if r["miss"]]
    return out


def evaluate(
    index: Index, questions: list[dict], k: int = 3, split: bool = False
) -> dict[str, dict]:
    """recall@k, hit@k, MRR, chunk hit@k and the median search time for every mode; with
    ``split``, also for each half of the questions (``"<mode> tune"``, ``"<mode> held-out"``)."""
    out = {}
    for mode in MODES:
        rows = [score_question(index, item, mode, k) for item in questions]
        out[mode] = summarize(rows, k)
        if split:
            for half, part in HALVES.items():
                out[f"{mode} {half}"] = summarize(rows[part], k)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--misses", action="store_true", help="list the questions missed")
    parser.add_argument(
        "--split", action="store_true", help="also report the tune and held-out halves"
    )
    args = parser.parse_args(argv)

    questions = json.loads(args.questions.read_text())
    t0 = time.perf_counter()
    index = Index.load_or_build()
    load_s = time.perf_counter() - t0
    n_docs = len({c.doc for c in index.chunks})
    results = evaluate(index, questions, args.k, args.split)
    how = "built" if index.built else "loaded from cache"
    print(
        f"{len(questions)} questions, {n_docs} documents, {len(index)} chunks "
        f"(index {how} in {load_s:.2f} s)\n"
    )
    if args.split:
        n = {half: len(questions[part]) for half, part in HALVES.items()}
        print(f"halves: tune = even positions ({n['tune']}), held-out = odd ({n['held-out']})\n")
    k = args.k
    print(f"| mode | recall@{k} | hit@{k} | MRR | chunk hit@{k} | search (median) |")
    print("|---|---|---|---|---|---|")
    for mode, r in results.items():
        print(
            f"| {mode} | {r[f'recall@{k}']:.3f} | {r[f'hit@{k}']:.3f} | {r['mrr']:.3f} | "
            f"{r[f'chunk_hit@{k}']:.3f} | {r['search_ms_median']:.1f} ms |"
        )
    if args.misses:
        for mode in MODES:
            r = results[mode]
            for m in r["misses"]:
                print(f"[{mode}] {m['q']!r}: want {m['want']}, got {m['got']}", file=sys.stderr)
    if args.json:
        meta = {"questions": len(questions), "chunks": len(index), "documents": n_docs, "k": k}
        if args.split:
            meta["halves"] = {"tune": "even positions", "held-out": "odd positions"}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
