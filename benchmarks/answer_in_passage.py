"""Answer in a passage: MRR of a relevant document alone and embedded in ~200 words of other text.

    PYTHONPATH=src python benchmarks/answer_in_passage.py --max-queries 100

For each of the five shared sets (`../shared/data`), up to `--max-queries` labelled test queries
(a seeded sample): the highest-graded relevant document among up to 9 non-relevant candidates,
and the same document inserted at a random sentence boundary inside about 200 words of sentences
from other documents of the corpus, among the same candidates (`evaluation/answer_in_passage.py`).
Four scorers:

- BM25: the project's BM25 over the corpus with the embedded texts added (so each scored text is
  indexed, and each statistic is the corpus's, give or take those texts);
- the teacher the bundled model was distilled from (`hybrid:`): 10 x (all-MiniLM-L6-v2 cosine of
  the whole text + 0.02 x that BM25), `training/teacher.py: hybrid_score`;
- the windowed teacher stage four is distilled from (`hybrid-windows:`): the same, with the cosine
  the best of the whole text's and its 3-sentence windows' (`WindowedHybridTeacher`);
- the bundled model, exact fp32, texts longer than its window read in windows (`chunk`, as search).

Writes docs/bench/answer-in-passage.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ettin_rerank import Reranker
from ettin_rerank.evaluation.answer_in_passage import (
    AnswerInPassageCase,
    AnswerInPassageSettings,
    build_cases,
    measure,
)
from ettin_rerank.retrieval.beir import BeirDataset, load_beir
from ettin_rerank.retrieval.bm25 import BM25Index
from ettin_rerank.retrieval.dense import DenseIndex
from ettin_rerank.scoring import PairScorer
from ettin_rerank.training.teacher import WINDOW_SENTENCES, SentenceWindowEmbeddings, hybrid_score

SETS = ("scifact", "trec-dl19-passage", "dbpedia-entity-sub50", "vaswani", "cranfield")
REPO = Path(__file__).resolve().parents[1]


class TextBM25:
    """BM25 of (query, text) pairs whose texts are all in the index (by text, not id)."""

    def __init__(self, texts: dict[str, str]):
        self.index = BM25Index.build(texts, show_progress=False)
        self.row_of_text = {text: row for row, text in enumerate(texts.values())}
        self.name = "bm25"
        self._by_query: dict[str, np.ndarray] = {}

    def scores(self, query: str) -> np.ndarray:
        if query not in self._by_query:
            self._by_query[query] = self.index.score_all(query)
        return self._by_query[query]

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return np.array([self.scores(q)[self.row_of_text[d]] for q, d in pairs], dtype=np.float32)


class WholeTextHybridTeacher:
    """The `hybrid:` teacher's score of any text of the cases: the bi-encoder reads each text whole."""

    def __init__(self, bm25: TextBM25, cases: Sequence[AnswerInPassageCase]):
        texts = {t: t for case in cases for t in (case.relevant, case.embedded, *case.negatives)}
        self.bm25 = bm25
        self.dense = DenseIndex.build(texts, use_cache=False, show_progress=False)
        self.row_of_text = {text: row for row, text in enumerate(texts)}
        queries = list(dict.fromkeys(case.query for case in cases))
        self.query_embedding = dict(zip(queries, self.dense.encode_queries(queries), strict=True))
        self.name = "hybrid teacher (whole-text cosine + 0.02 x BM25)"

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return hybrid_score(self.cosines(pairs), self.bm25.score_pairs(pairs))

    def cosines(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return np.array(
            [self.dense.embeddings[self.row_of_text[d]] @ self.query_embedding[q] for q, d in pairs]
        )


class WindowedTextHybridTeacher(WholeTextHybridTeacher):
    """The `hybrid-windows:` teacher (`training/teacher.py: WindowedHybridTeacher`) of any text of the
    cases: the best of the whole text's cosine and its 3-sentence windows' cosines, + 0.02 x BM25."""

    def __init__(self, bm25: TextBM25, cases: Sequence[AnswerInPassageCase]):
        super().__init__(bm25, cases)
        self.windows = SentenceWindowEmbeddings(self.dense.encode_queries, WINDOW_SENTENCES)
        self.name = "windowed hybrid teacher (best of whole text and 3-sentence windows + 0.02 x BM25)"

    def cosines(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        queries = np.stack([self.query_embedding[q] for q, _ in pairs])  # (pairs, dim)
        windows = self.windows.best_cosines(queries, [d for _, d in pairs])
        return np.maximum(super().cosines(pairs), windows)


SCORERS = ("bm25", "teacher", "windowed_teacher", "model")


def measure_set(
    dataset: BeirDataset,
    model: Reranker,
    max_queries: int,
    settings: AnswerInPassageSettings,
    scorers: Sequence[str] = SCORERS,
) -> dict:
    started = time.perf_counter()
    corpus_bm25 = BM25Index.build(dataset.corpus, show_progress=False)
    cases = build_cases(dataset, corpus_bm25, max_queries, settings)
    texts = {doc_id: doc.text_for_scoring for doc_id, doc in dataset.corpus.items()}
    texts.update({f"answer-in-passage:{case.query_id}": case.embedded for case in cases})

    def timed(build: Callable[[], PairScorer]) -> dict:
        """The scorer's figures; `seconds` counts building it (the teacher encodes its texts) and scoring."""
        scorer_started = time.perf_counter()
        figures = measure(cases, build(), long_documents="chunk").to_dict()
        return {**figures, "seconds": round(time.perf_counter() - scorer_started, 1)}

    bm25 = TextBM25(texts)
    builders: dict[str, Callable[[], PairScorer]] = {
        "bm25": lambda: bm25,
        "teacher": lambda: WholeTextHybridTeacher(bm25, cases),
        "windowed_teacher": lambda: WindowedTextHybridTeacher(bm25, cases),
        "model": lambda: model,
    }
    results = {name: timed(builders[name]) for name in scorers}
    return {
        "queries": len(cases),
        "negatives_per_query": float(np.mean([len(c.negatives) for c in cases])),
        "judged_negative_share": float(
            sum(c.judged_negatives for c in cases) / max(1, sum(len(c.negatives) for c in cases))
        ),
        "filler_words_mean": float(np.mean([c.filler_words for c in cases])),
        "relevant_words_mean": float(np.mean([len(c.relevant.split()) for c in cases])),
        "scorers": results,
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown_table(results: dict, scorers: Sequence[str]) -> str:
    lines = [
        "| set (queries) | " + " | ".join(f"{name} alone / embedded (ratio)" for name in scorers) + " |",
        "|---|" + "---|" * len(scorers),
    ]
    for name, result in results.items():
        cells = [
            f"{s['mrr_alone']:.3f} / {s['mrr_embedded']:.3f} ({s['ratio']:.2f})"
            for s in (result["scorers"][k] for k in scorers)
        ]
        lines.append(f"| {name} ({result['queries']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--max-queries", type=int, default=100, help="labelled test queries per set")
    parser.add_argument(
        "--scorers", nargs="+", default=list(SCORERS), choices=SCORERS, help="which rows to measure"
    )
    parser.add_argument("--model", default=None, help="a model directory (default: the bundled model)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "bench" / "answer-in-passage.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    settings = AnswerInPassageSettings()
    model = Reranker.from_pretrained(args.model, dtype="float32")
    results = {}
    for name in args.sets:
        results[name] = measure_set(
            load_beir(args.data / name, "test"), model, args.max_queries, settings, args.scorers
        )
        print(f"{name}: {json.dumps(results[name]['scorers'])}", flush=True)
    report = {
        "benchmark": "answer in a passage (benchmarks/answer_in_passage.py)",
        "model": args.model or "bundled (src/ettin_rerank/default_model), dtype float32",
        "long_documents": "chunk",
        "max_queries": args.max_queries,
        "settings": asdict(settings),
        "sets": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown_table(results, args.scorers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
