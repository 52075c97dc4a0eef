"""Queries derived from documents, for corpora that come without training queries.

`write_pseudo_query_dataset` turns a BEIR corpus into a BEIR training set: for a seeded sample
of documents it cuts a query out of the document (a span of words from one of its sentences, the
inverse cloze task; or its title, when it has one) and judges the source document relevant. The
rest of the pipeline (`mine`, `score-teacher`, `select`) then treats it like any labelled split,
and the teacher's scores, not the single judgement, carry most of what the student learns.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..retrieval.beir import load_corpus

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"\S+")
CONTENT_WORD = re.compile(r"[^\W\d_][\w-]*[^\W_]")  # a word of letters (digits inside), 2+ characters
# function words that make a cut-out span read like a fragment rather than a query
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "either",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "may",
        "me",
        "might",
        "more",
        "most",
        "must",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "very",
        "via",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "you",
        "your",
        "using",
        "used",
        "use",
        "shown",
        "show",
        "shows",
        "given",
        "thus",
        "however",
        "results",
        "result",
        "found",
    ]
)


@dataclass(frozen=True)
class PseudoQuerySettings:
    queries: int = 600  # documents sampled (at most the corpus size)
    title_share: float = 0.3  # of the sampled documents with a title, this share uses it as the query
    min_words: int = 3  # content words per cut-out query
    max_words: int = 7
    window_words: int = 30  # a corpus without sentence punctuation is cut into windows of this many words
    seed: int = 12


def sentences_of(text: str, min_words: int, window_words: int) -> list[str]:
    """The sentences of `text` with at least `min_words` words; unpunctuated text (Vaswani) is cut
    into windows of `window_words` words instead."""
    sentences = [s for s in SENTENCE_END.split(text) if len(WORD.findall(s)) >= min_words]
    if len(sentences) <= 1:
        words = WORD.findall(text)
        sentences = [" ".join(words[i : i + window_words]) for i in range(0, len(words), window_words)]
        sentences = [s for s in sentences if len(s.split()) >= min_words]
    return sentences


def cloze_query(text: str, rng: random.Random, settings: PseudoQuerySettings) -> str | None:
    """`min_words`..`max_words` consecutive content words (function words and numbers dropped)
    from one sentence of `text`, in order: a keyword query (None if no sentence has enough)."""
    sentences = sentences_of(text, settings.min_words, settings.window_words)
    if not sentences:
        return None
    rng.shuffle(sentences)
    for sentence in sentences:
        words = [w for w in CONTENT_WORD.findall(sentence) if w.lower() not in STOPWORDS]
        if len(words) >= settings.min_words:
            length = rng.randint(settings.min_words, min(settings.max_words, len(words)))
            start = rng.randint(0, len(words) - length)
            return " ".join(words[start : start + length])
    return None


def write_pseudo_query_dataset(
    corpus_dir: str | Path, output_dir: str | Path, settings: PseudoQuerySettings | None = None
) -> Path:
    """Write OUTPUT/{corpus.jsonl, queries.jsonl, qrels/train.tsv}; an existing complete output is kept.

    Query ids carry the corpus folder's name (`vaswani:pq17`), so the training sets of several
    corpora can be mixed without two queries sharing an id."""
    settings = settings or PseudoQuerySettings()
    output = Path(output_dir)
    qrels_path = output / "qrels" / "train.tsv"
    if qrels_path.is_file():
        return output
    corpus = load_corpus(Path(corpus_dir) / "corpus.jsonl")
    rng = random.Random(settings.seed)
    sampled = rng.sample(sorted(corpus), min(settings.queries, len(corpus)))
    queries: dict[str, str] = {}
    qrels: list[tuple[str, str]] = []
    for doc_id in sampled:
        document = corpus[doc_id]
        title = document.title.strip(" .")
        query: str | None
        if title and len(title.split()) >= 2 and rng.random() < settings.title_share:
            query = title
        else:
            query = cloze_query(document.text, rng, settings)
        if not query:
            continue
        query_id = f"{Path(corpus_dir).name}:pq{len(queries)}"
        queries[query_id] = query
        qrels.append((query_id, doc_id))
    (output / "qrels").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(corpus_dir) / "corpus.jsonl", output / "corpus.jsonl")
    with open(output / "queries.jsonl", "w", encoding="utf-8") as f:
        for query_id, text in queries.items():
            f.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    tmp = qrels_path.with_suffix(".tmp")
    tmp.write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels), encoding="utf-8"
    )
    tmp.replace(qrels_path)  # written last: its presence marks a complete output
    return output
