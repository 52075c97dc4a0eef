"""Stage four's training groups: the answer, wherever it sits, against text that only shares its topic.

For training queries whose answering span is known (a pseudo-query's source sentence, recorded in
`answers.jsonl`; otherwise the teacher's best sentence window of the judged positive, as for
SciFact's labelled queries), one group per query holds:

- the answer alone, and `answer_passages` copies of it inserted at a random sentence boundary of a
  realistic passage: 80-180 words of contiguous sentences of ONE other document of the same corpus
  (a real paragraph around it, not a bag of unrelated sentences), short enough that the pair fits
  the student's `max_length` tokens whole, so the answer is never cut off;
- hard negatives: the source document with the answer removed (same topic, no answer), and
  `notes` one-sentence notes from other candidates of the query that share its content words;
- `ordinary` of the query's mined candidates (its judged positives among them).

Every text is scored by the windowed hybrid teacher (`WindowedHybridTeacher`), which reads a text
by its best window of 3 sentences, so a text that merely shares the query's topic does not inherit
an answer's score; an answer inside a passage gets at least the answer's own score
(`passages_score_as_their_answer`), since its window still waters the answer down. The output has `select`'s layout
(OUTPUT/{train,heldout}/part-NNNNN.parquet, one shard per source), read by `distill`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..inference.tokenization import PairTokenizer
from ..retrieval.beir import BeirDataset, load_beir
from ..sentences import sentences_of
from .io import CANDIDATE_COLUMNS, ResumableShards, read_table
from .pseudo_queries import CONTENT_WORD, STOPWORDS, read_answer_sentences
from .teacher import WindowedHybridTeacher

logger = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        ("query_id", pa.string()),
        ("query", pa.string()),
        ("doc_id", pa.string()),
        ("document", pa.string()),
        ("label", pa.int64()),
        ("first_stage_rank", pa.int64()),
        ("selection", pa.string()),
        ("teacher_score", pa.float32()),
    ]
)
_HOST_DRAWS = 50  # documents tried for a passage of the right length before the query goes without


@dataclass(frozen=True)
class AnswerWindowSettings:
    max_length: int = 256  # tokens per pair the student reads: a passage with its answer fits whole
    queries: int = 300  # per source: a seeded sample of its queries with a relevant document
    answer_passages: int = 2  # the answer inside a passage of another document
    host_min_words: int = 80  # the passage around the answer: contiguous sentences of one document
    host_max_words: int = 180
    notes: int = 2  # one-sentence notes from other candidates that share the query's content words
    note_max_words: int = 25
    ordinary: int = 8  # the query's mined candidates: its positives, the first stage's top, then random
    ordinary_top: int = 3
    min_rest_words: int = 10  # the source document without its answer is kept when this long
    heldout_queries: int = 10  # per source, set aside for checkpoint selection
    seed: int = 12


@dataclass(frozen=True)
class AnswerSource:
    """A training set: a BEIR directory (corpus, queries, qrels/SPLIT.tsv) and its mined candidates."""

    dataset_dir: Path
    candidates_dir: Path
    split: str = "train"
    queries: int | None = None  # queries given answer groups; None: the settings' `queries`


def normalise_space(text: str) -> str:
    return " ".join(text.split())


def content_words(text: str) -> set[str]:
    return {w.lower() for w in CONTENT_WORD.findall(text) if w.lower() not in STOPWORDS}


def host_passage(  # noqa: PLR0913 (the bounds, each named)
    sentences: Sequence[str],
    rng: random.Random,
    min_words: int,
    max_words: int,
    tokens: Sequence[int] | None = None,
    max_tokens: int | None = None,
) -> list[str] | None:
    """A random run of contiguous `sentences` with `min_words`..`max_words` words and, when given,
    at most `max_tokens` of the sentences' `tokens` (None if no run has)."""
    counts = [len(s.split()) for s in sentences]
    runs = []
    for start in range(len(sentences)):
        words = used = 0
        for end in range(start, len(sentences)):
            words += counts[end]
            used += tokens[end] if tokens is not None else 0
            if words > max_words or (max_tokens is not None and used > max_tokens):
                break
            if words >= min_words:
                runs.append((start, end + 1))
    if not runs:
        return None
    start, end = runs[rng.randrange(len(runs))]
    return list(sentences[start:end])


def insert_at_boundary(sentences: Sequence[str], answer: str, rng: random.Random) -> str:
    """`answer` between two of `sentences` (or before or after them all), chosen at random."""
    at = rng.randint(0, len(sentences))
    return " ".join([*sentences[:at], answer, *sentences[at:]])


def without_answer(document: str, answer: str) -> str | None:
    """`document` with the `answer` span cut out (spacing normalised); None when it is not inside."""
    text, span = normalise_space(document), normalise_space(answer)
    if not span or span not in text:
        return None
    return normalise_space(text.replace(span, " ", 1))


class HostPassages:
    """Passages of one corpus to set an answer in: its documents' sentences, cut once, and counted
    in the student's tokens (`count_tokens`) when a passage must fit a token budget."""

    def __init__(
        self,
        dataset: BeirDataset,
        settings: AnswerWindowSettings,
        count_tokens: Callable[[Sequence[str]], np.ndarray] | None = None,
    ):
        self.settings = settings
        self.count_tokens = count_tokens
        self._tokens: dict[str, list[int]] = {}
        self.sentences = {
            doc_id: sentences_of(document.text_for_scoring, min_words=1, window_words=30)
            for doc_id, document in dataset.corpus.items()
        }
        self.long_enough = sorted(
            doc_id
            for doc_id, sentences in self.sentences.items()
            if sum(len(s.split()) for s in sentences) >= settings.host_min_words
        )

    def draw(
        self, exclude: set[str], rng: random.Random, max_tokens: int | None = None
    ) -> tuple[str, list[str]] | None:
        """(doc_id, a passage of its contiguous sentences of at most `max_tokens`) from a document
        outside `exclude`."""
        for _ in range(_HOST_DRAWS if self.long_enough else 0):
            doc_id = self.long_enough[rng.randrange(len(self.long_enough))]
            if doc_id in exclude:
                continue
            passage = host_passage(
                self.sentences[doc_id],
                rng,
                self.settings.host_min_words,
                self.settings.host_max_words,
                self.tokens(doc_id) if max_tokens is not None else None,
                max_tokens,
            )
            if passage:
                return doc_id, passage
        return None

    def tokens(self, doc_id: str) -> list[int]:
        if self.count_tokens is None:
            raise ValueError("a token budget needs HostPassages(count_tokens=...)")
        if doc_id not in self._tokens:
            self._tokens[doc_id] = [int(n) for n in self.count_tokens(self.sentences[doc_id])]
        return self._tokens[doc_id]


def answer_group(  # noqa: PLR0913 (one query's parts, each named)
    query_id: str,
    query: str,
    answer: str,
    source: tuple[str, str],
    candidates: Sequence[dict],
    hosts: HostPassages,
    rng: random.Random,
    settings: AnswerWindowSettings,
    passage_tokens: int | None = None,
) -> list[dict]:
    """One query's rows (no teacher score yet): answer alone, answer in passages, the source
    document without it, notes, ordinary candidates. `source` is (doc_id, text) of the document the
    answer comes from; `candidates` are the query's mined rows (CANDIDATE_COLUMNS), best first;
    `passage_tokens` bounds the tokens of a host passage (so the answer is never cut off)."""
    source_id, source_text = source

    def row(doc_id: str, document: str, label: int, selection: str, rank: int = -1) -> dict:
        return {
            "query_id": query_id,
            "query": query,
            "doc_id": doc_id,
            "document": document,
            "label": label,
            "first_stage_rank": rank,
            "selection": selection,
        }

    rows = [row(f"{source_id}@answer", answer, 1, "answer")]
    exclude = {source_id, *(c["doc_id"] for c in candidates)}
    for i in range(settings.answer_passages):
        host = hosts.draw(exclude, rng, passage_tokens)
        if host is None:
            break
        host_id, sentences = host
        exclude.add(host_id)
        passage = insert_at_boundary(sentences, answer, rng)
        rows.append(row(f"{source_id}@answer-in:{host_id}#{i}", passage, 1, "answer-passage"))
    rest = without_answer(source_text, answer)
    if rest is not None and len(rest.split()) >= settings.min_rest_words:
        rows.append(row(f"{source_id}@without-answer", rest, 0, "without-answer"))
    rows.extend(_notes(query, answer, source_id, candidates, rng, settings, row))
    rows.extend(_ordinary(candidates, rng, settings, row))
    return rows


def _notes(
    query: str,
    answer: str,
    source_id: str,
    candidates: Sequence[dict],
    rng: random.Random,
    settings: AnswerWindowSettings,
    row: Callable[..., dict],
) -> list[dict]:
    """Single sentences of other (unjudged) candidates sharing the most content words with the query."""
    words = content_words(query)
    span = normalise_space(answer)
    scored = []
    for candidate in candidates:
        if candidate["doc_id"] == source_id or candidate["label"] > 0:
            continue
        for sentence in sentences_of(candidate["document"], min_words=4, window_words=30):
            shared = len(words & content_words(sentence))
            if shared and len(sentence.split()) <= settings.note_max_words and span not in sentence:
                scored.append((-shared, rng.random(), candidate["doc_id"], sentence))
    notes: list[dict] = []
    used: set[str] = set()
    for _, _, doc_id, sentence in sorted(scored):
        if doc_id not in used and len(notes) < settings.notes:
            used.add(doc_id)
            notes.append(row(f"{doc_id}@note", sentence, 0, "note"))
    return notes


def _ordinary(
    candidates: Sequence[dict], rng: random.Random, settings: AnswerWindowSettings, row: Callable[..., dict]
) -> list[dict]:
    """The judged positives, the first stage's top `ordinary_top`, then random others."""
    positives = [c for c in candidates if c["label"] > 0]
    others = [c for c in candidates if c["label"] <= 0]
    top, rest = others[: settings.ordinary_top], others[settings.ordinary_top :]
    rng.shuffle(rest)
    chosen = [*positives, *top, *rest][: max(settings.ordinary, len(positives))]
    return [
        row(c["doc_id"], c["document"], int(c["label"]), "ordinary", int(c["first_stage_rank"]))
        for c in chosen
    ]


def _candidates_by_query(candidates_dir: Path) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Each query's mined rows, best first, and the provenance of the first row."""
    table = read_table(candidates_dir, CANDIDATE_COLUMNS, "answer windows")
    by_query: dict[str, list[dict]] = {}
    for candidate in table.to_pylist():
        by_query.setdefault(candidate["query_id"], []).append(candidate)
    for rows in by_query.values():
        rows.sort(key=lambda c: (c["first_stage_rank"] < 0, c["first_stage_rank"]))
    first = table.slice(0, 1).to_pylist()[0]
    provenance = {name: str(first.get(name) or "") for name in ("dataset", "split", "first_stage")}
    return by_query, provenance


def build_answer_groups(
    source: AnswerSource,
    teacher: WindowedHybridTeacher,
    tokenizer: PairTokenizer,
    settings: AnswerWindowSettings,
) -> tuple[pa.Table, pa.Table, dict[str, str]]:
    """(train, heldout, provenance) of one source, every row scored by `teacher` (over its corpus);
    lengths are counted with the student's `tokenizer`."""
    dataset = load_beir(source.dataset_dir, source.split)
    candidates, provenance = _candidates_by_query(source.candidates_dir)
    recorded = read_answer_sentences(source.dataset_dir)
    query_ids = sorted(
        q for q, judged in dataset.qrels.items() if q in candidates and any(g > 0 for g in judged.values())
    )
    rng = random.Random(f"{settings.seed}:{source.dataset_dir.name}")
    wanted = settings.queries if source.queries is None else source.queries
    query_ids = sorted(rng.sample(query_ids, min(wanted, len(query_ids))))
    heldout = set(rng.sample(query_ids, min(settings.heldout_queries, max(0, len(query_ids) - 1))))
    sources = {}
    for query_id in query_ids:
        judged = dataset.qrels[query_id]
        doc_id = max((d for d in judged if judged[d] > 0), key=lambda d: judged[d])
        sources[query_id] = (doc_id, dataset.corpus[doc_id].text_for_scoring)
    answers = _answer_spans(dataset, query_ids, sources, recorded, teacher)
    hosts = HostPassages(dataset, settings, tokenizer.count_tokens)
    rows: dict[str, list[dict]] = {"train": [], "heldout": []}
    query_tokens = tokenizer.count_tokens([dataset.queries[q] for q in query_ids])
    answer_tokens = tokenizer.count_tokens([answers[q] for q in query_ids])
    for query_id, query_length, answer_length in zip(query_ids, query_tokens, answer_tokens, strict=True):
        query_rng = random.Random(f"{settings.seed}:{query_id}")
        # joining sentences can merge or split a token at each boundary: a few tokens of slack
        budget = (
            settings.max_length - tokenizer.num_special_tokens - int(query_length) - int(answer_length) - 8
        )
        group = answer_group(
            query_id,
            dataset.queries[query_id],
            answers[query_id],
            sources[query_id],
            candidates[query_id],
            hosts,
            query_rng,
            settings,
            budget,
        )
        rows["heldout" if query_id in heldout else "train"].extend(group)
    teacher.add_texts([r["document"] for part in rows.values() for r in part])
    tables = []
    for part in ("train", "heldout"):
        pairs = [(r["query"], r["document"]) for r in rows[part]]
        scores = teacher.score_pairs(pairs) if pairs else np.zeros(0, dtype=np.float32)
        scores = passages_score_as_their_answer(rows[part], scores)
        tables.append(
            pa.Table.from_pylist(
                [{**r, "teacher_score": float(s)} for r, s in zip(rows[part], scores, strict=True)],
                schema=SCHEMA,
            )
        )
    return tables[0], tables[1], {**provenance, "teacher": teacher.name}


def passages_score_as_their_answer(rows: Sequence[dict], scores: np.ndarray) -> np.ndarray:
    """An answer inside a passage is as relevant as the answer alone (stage three's rule: a window is
    as relevant as its most relevant part). The windowed teacher reads the answer with the two
    sentences around it, which waters it down: on the smoke build the answer scored 8.2-9.2 alone
    and 5.2-6.8 in a passage, level with the source document with the answer cut out."""
    alone = {r["query_id"]: float(s) for r, s in zip(rows, scores, strict=True) if r["selection"] == "answer"}
    targets = np.asarray(scores, dtype=np.float32).copy()
    for i, r in enumerate(rows):
        if r["selection"] == "answer-passage" and r["query_id"] in alone:
            targets[i] = max(targets[i], alone[r["query_id"]])
    return targets


def _answer_spans(
    dataset: BeirDataset,
    query_ids: Sequence[str],
    sources: dict[str, tuple[str, str]],
    recorded: dict[str, str],
    teacher: WindowedHybridTeacher,
) -> dict[str, str]:
    """Each query's answering span: its recorded source sentence when that sits in the source
    document, else the teacher's best window of the document."""
    spans = {
        q: recorded[q]
        for q in query_ids
        if q in recorded and normalise_space(recorded[q]) in normalise_space(sources[q][1])
    }
    located = [q for q in query_ids if q not in spans]
    if located:
        embeddings = teacher.dense.encode_queries([dataset.queries[q] for q in located])
        for query_id, embedding in zip(located, embeddings, strict=True):
            spans[query_id] = teacher.windows.best_window(embedding, sources[query_id][1])
    return spans


def write_answer_window_dataset(
    sources: Sequence[AnswerSource],
    output_dir: str | Path,
    tokenizer_dir: str | Path,
    settings: AnswerWindowSettings | None = None,
) -> Path:
    """OUTPUT/{train,heldout}/part-NNNNN.parquet, shard N from `sources[N]`, lengths counted with the
    tokenizer in `tokenizer_dir` (the student's); a rerun with the same settings keeps the shards
    written (their manifests pin the settings and the sources)."""
    settings = settings or AnswerWindowSettings()
    output = Path(output_dir)
    recorded = {
        **asdict(settings),
        "sources": [[str(s.dataset_dir), str(s.candidates_dir), s.split, s.queries] for s in sources],
    }
    parts = {
        part: ResumableShards(output / part, recorded, "answer windows", len(sources))
        for part in ("train", "heldout")
    }
    tokenizer = PairTokenizer.from_dir(tokenizer_dir, settings.max_length, with_token_type_ids=False)
    todo = sorted(set(parts["train"].start()) | set(parts["heldout"].start()))
    for index in todo:
        source = sources[index]
        logger.info("answer windows: %s", source.dataset_dir)
        teacher = WindowedHybridTeacher(source.dataset_dir)
        train, heldout, provenance = build_answer_groups(source, teacher, tokenizer, settings)
        # heldout first: a source counts as done once its train shard exists
        parts["heldout"].write_shard(index, heldout, provenance)
        parts["train"].write_shard(index, train, provenance)
    for shards in parts.values():
        shards.finish()
    return output
