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
from ..sentences import sentences_of

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


ANSWERS_FILE = "answers.jsonl"  # beside queries.jsonl: the sentence each cut-out query came from


def read_answer_sentences(dataset_dir: str | Path) -> dict[str, str]:
    """{query_id: the sentence its query was cut from} of a pseudo-query dataset (empty without one)."""
    path = Path(dataset_dir) / ANSWERS_FILE
    if not path.is_file():
        return {}
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row["query_id"]: row["sentence"] for row in rows}


@dataclass(frozen=True)
class PseudoQuerySettings:
    queries: int = 600  # documents sampled (at most the corpus size)
    title_share: float = 0.3  # of the sampled documents with a title, this share uses it as the query
    min_words: int = 3  # content words per cut-out query
    max_words: int = 7
    window_words: int = 30  # a corpus without sentence punctuation is cut into windows of this many words
    seed: int = 12


def cloze_query(text: str, rng: random.Random, settings: PseudoQuerySettings) -> str | None:
    """`min_words`..`max_words` consecutive content words (function words and numbers dropped)
    from one sentence of `text`, in order: a keyword query (None if no sentence has enough)."""
    cut = cloze_query_and_sentence(text, rng, settings)
    return cut[0] if cut else None


def cloze_query_and_sentence(
    text: str, rng: random.Random, settings: PseudoQuerySettings
) -> tuple[str, str] | None:
    """`cloze_query`'s query and the sentence of `text` it was cut from (the span that answers it)."""
    sentences = sentences_of(text, settings.min_words, settings.window_words)
    if not sentences:
        return None
    rng.shuffle(sentences)
    for sentence in sentences:
        words = [w for w in CONTENT_WORD.findall(sentence) if w.lower() not in STOPWORDS]
        if len(words) >= settings.min_words:
            length = rng.randint(settings.min_words, min(settings.max_words, len(words)))
            start = rng.randint(0, len(words) - length)
            return " ".join(words[start : start + length]), sentence
    return None


def write_pseudo_query_dataset(
    corpus_dir: str | Path, output_dir: str | Path, settings: PseudoQuerySettings | None = None
) -> Path:
    """Write OUTPUT/{corpus.jsonl, queries.jsonl, answers.jsonl, qrels/train.tsv}; an existing complete
    output is kept. `answers.jsonl` holds, for each query cut out of a sentence, that sentence (the
    span of its source document that answers it; title queries have none): {query_id, doc_id, sentence}.

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
    answers: dict[str, str] = {}
    for doc_id in sampled:
        document = corpus[doc_id]
        title = document.title.strip(" .")
        query: str | None
        sentence: str | None = None
        if title and len(title.split()) >= 2 and rng.random() < settings.title_share:
            query = title
        else:
            cut = cloze_query_and_sentence(document.text, rng, settings)
            query, sentence = cut if cut else (None, None)
        if not query:
            continue
        query_id = f"{Path(corpus_dir).name}:pq{len(queries)}"
        queries[query_id] = query
        if sentence is not None:
            answers[query_id] = sentence
        qrels.append((query_id, doc_id))
    (output / "qrels").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(corpus_dir) / "corpus.jsonl", output / "corpus.jsonl")
    with open(output / "queries.jsonl", "w", encoding="utf-8") as f:
        for query_id, text in queries.items():
            f.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    with open(output / ANSWERS_FILE, "w", encoding="utf-8") as f:
        for query_id, doc_id in qrels:
            if query_id in answers:
                f.write(
                    json.dumps({"query_id": query_id, "doc_id": doc_id, "sentence": answers[query_id]}) + "\n"
                )
    tmp = qrels_path.with_suffix(".tmp")
    tmp.write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels), encoding="utf-8"
    )
    tmp.replace(qrels_path)  # written last: its presence marks a complete output
    return output
