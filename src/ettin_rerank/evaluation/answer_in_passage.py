"""Answer in a passage: does a scorer find a relevant text when it sits inside other text?

For each labelled query of a BEIR set, one relevant document (the highest-graded) is scored twice
among the same non-relevant candidates: alone, and embedded at a random sentence boundary inside
about `filler_words` words of sentences cut from other documents of the same corpus. A reader
that finds the answer ranks both the same, so MRR(embedded) / MRR(alone) stays near 1; a scorer
that judges a text by its overall topic lets the surrounding sentences drown the answer.

Negatives: the query's judged non-relevant documents, the ones BM25 scores highest first; when
the query has fewer than `negatives` of them, BM25's highest-scored documents not judged relevant
fill the list. Everything random is seeded per (seed, query id), so a case does not change with
how many queries are taken or in which order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..retrieval.beir import BeirDataset
from ..retrieval.bm25 import BM25Index
from ..retrieval.index import score_candidates
from ..scoring import PairScorer
from ..sentences import sentences_of
from .calibration import is_relevant

_MAX_DRAWS = 10_000  # sentences drawn for one filler before giving up (a corpus of excluded documents)


@dataclass(frozen=True)
class AnswerInPassageSettings:
    negatives: int = 9  # non-relevant candidates per query, the same in both lists
    filler_words: int = 200  # the embedded text has at least this many words around the relevant one
    min_sentence_words: int = 5  # shorter sentences are not used as filler (headings, fragments)
    max_sentence_words: int = 50  # nor longer ones, so the filler stays near `filler_words`
    seed: int = 21


@dataclass(frozen=True)
class AnswerInPassageCase:
    """One query's two candidate lists: [relevant, *negatives] and [embedded, *negatives]."""

    query_id: str
    query: str
    relevant_id: str
    relevant: str  # the relevant document's scoring text, whole
    embedded: str  # `relevant` inside filler sentences from other documents
    answer_start: int  # where `relevant` starts in `embedded` (characters)
    filler_words: int  # words of `embedded` that are not `relevant`
    negative_ids: tuple[str, ...]
    negatives: tuple[str, ...]
    judged_negatives: int  # how many of `negatives` are judged non-relevant (the rest: BM25's)

    @property
    def alone_list(self) -> list[str]:
        return [self.relevant, *self.negatives]

    @property
    def embedded_list(self) -> list[str]:
        return [self.embedded, *self.negatives]


@dataclass(frozen=True)
class AnswerInPassageScore:
    """Mean reciprocal rank of the relevant text over the cases, alone and embedded."""

    mrr_alone: float
    mrr_embedded: float
    queries: int

    @property
    def ratio(self) -> float:
        return self.mrr_embedded / self.mrr_alone if self.mrr_alone else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return {
            "mrr_alone": self.mrr_alone,
            "mrr_embedded": self.mrr_embedded,
            "ratio": self.ratio,
            "queries": self.queries,
        }


def reciprocal_rank(relevant_score: float, negative_scores: np.ndarray) -> float:
    """1 / rank of the relevant candidate; a negative scoring equal to it ranks above it, so a
    scorer gets no credit for ties (BM25 scores 0 for every text sharing no query term)."""
    return 1.0 / (1 + int(np.count_nonzero(negative_scores >= relevant_score)))


def filler_pool(dataset: BeirDataset, settings: AnswerInPassageSettings) -> list[tuple[str, str]]:
    """(doc_id, sentence) for every usable sentence of the corpus, in corpus order."""
    low, high = settings.min_sentence_words, settings.max_sentence_words
    return [
        (doc_id, sentence)
        for doc_id, document in dataset.corpus.items()
        for sentence in sentences_of(document.text_for_scoring, min_words=low, window_words=30)
        if low <= len(sentence.split()) <= high
    ]


def embed_among_sentences(
    text: str,
    pool: Sequence[tuple[str, str]],
    exclude: set[str],
    rng: random.Random,
    filler_words: int,
) -> tuple[str, int, int]:
    """(`text` at a random sentence boundary among random pool sentences of at least `filler_words`
    words, none from the `exclude`d documents; where `text` starts; the filler's word count)."""
    sentences: list[str] = []
    words = draws = 0
    while words < filler_words:
        if draws == _MAX_DRAWS or not pool:
            raise ValueError(f"the corpus has too few usable sentences outside {len(exclude)} documents")
        draws += 1
        doc_id, sentence = pool[rng.randrange(len(pool))]
        if doc_id not in exclude:
            sentences.append(sentence)
            words += len(sentence.split())
    at = rng.randint(0, len(sentences))
    before = " ".join(sentences[:at])
    start = len(before) + 1 if before else 0
    return " ".join([*sentences[:at], text, *sentences[at:]]), start, words


def build_cases(
    dataset: BeirDataset,
    bm25: BM25Index,
    max_queries: int | None = None,
    settings: AnswerInPassageSettings | None = None,
) -> list[AnswerInPassageCase]:
    """The cases of `dataset`'s labelled queries (a seeded sample of `max_queries` of them, in
    qrels order); `bm25` indexes `dataset.corpus` and orders the negatives."""
    settings = settings or AnswerInPassageSettings()
    query_ids = [
        q
        for q, judged in dataset.qrels.items()
        if q in dataset.queries and any(map(is_relevant, judged.values()))
    ]
    if max_queries is not None and max_queries < len(query_ids):
        chosen = set(random.Random(settings.seed).sample(query_ids, max_queries))
        query_ids = [q for q in query_ids if q in chosen]
    pool = filler_pool(dataset, settings)
    row_of = {doc_id: row for row, doc_id in enumerate(bm25.doc_ids)}
    cases = []
    for query_id in query_ids:
        query, judged = dataset.queries[query_id], dataset.qrels[query_id]
        # the highest grade; among equal grades the first in the qrels file
        relevant_id = max((d for d in judged if is_relevant(judged[d])), key=lambda d: judged[d])
        lexical = bm25.score_all(query)
        by_bm25 = sorted(row_of, key=lambda d: -lexical[row_of[d]])  # stable: ties keep index order
        judged_negative = [d for d in by_bm25 if d in judged and not is_relevant(judged[d])]
        unjudged = [d for d in by_bm25 if d not in judged]
        negative_ids = (judged_negative + unjudged)[: settings.negatives]
        exclude = {*judged, *negative_ids}
        relevant = dataset.corpus[relevant_id].text_for_scoring
        rng = random.Random(f"{settings.seed}:{query_id}")
        embedded, start, words = embed_among_sentences(relevant, pool, exclude, rng, settings.filler_words)
        cases.append(
            AnswerInPassageCase(
                query_id=query_id,
                query=query,
                relevant_id=relevant_id,
                relevant=relevant,
                embedded=embedded,
                answer_start=start,
                filler_words=words,
                negative_ids=tuple(negative_ids),
                negatives=tuple(dataset.corpus[d].text_for_scoring for d in negative_ids),
                judged_negatives=min(len(judged_negative), settings.negatives),
            )
        )
    return cases


def measure(
    cases: Sequence[AnswerInPassageCase], scorer: PairScorer, long_documents: str = "chunk"
) -> AnswerInPassageScore:
    """MRR of the relevant text alone and embedded; a `LongDocumentScorer` (the engine) reads
    texts longer than its window by `long_documents`, as search does."""
    if not cases:
        raise ValueError("no cases to measure: the dataset has no labelled query with a relevant document")
    alone, embedded = [], []
    for case in cases:
        texts = [case.relevant, case.embedded, *case.negatives]
        scores = score_candidates(scorer, case.query, texts, long_documents).scores
        alone.append(reciprocal_rank(float(scores[0]), scores[2:]))
        embedded.append(reciprocal_rank(float(scores[1]), scores[2:]))
    return AnswerInPassageScore(float(np.mean(alone)), float(np.mean(embedded)), len(cases))
