"""BEIR-format datasets: load with validation, write back.

A BEIR dataset directory holds::

    corpus.jsonl          one JSON object a line: {"_id", "title", "text"}
    queries.jsonl         one JSON object a line: {"_id", "text"}
    qrels/<split>.tsv     header "query-id<TAB>corpus-id<TAB>score", then one judgement a line

Problems that make a file unusable (missing file, malformed line) raise with the
file and line number; judgements that point at unknown ids are dropped with a
warning and counted in `BeirDataset.issues`.

`load_beir(directory, qrels_file=...)` reads TREC-format qrels (`trec.read_qrels`) in place
of `qrels/<split>.tsv`, as trec_eval would: judgements of documents outside the corpus are kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .trec import read_qrels as read_trec_qrels

logger = logging.getLogger(__name__)

# qid -> {doc_id: relevance}
Qrels = dict[str, dict[str, int]]
# qid -> {doc_id: score}, insertion order = rank order
Run = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Document:
    """One corpus entry. `text_for_scoring` is what rerankers and first stages see."""

    doc_id: str
    title: str
    text: str

    @property
    def text_for_scoring(self) -> str:
        return document_text(self.title, self.text)


def document_text(title: str | None, text: str | None) -> str:
    """The document-text rule: `title + " " + text` when a title exists, else `text`."""
    title = (title or "").strip()
    text = text or ""
    return f"{title} {text}" if title else text


def scoring_text(document: Document | str) -> str:
    """What first stages and rerankers see of a corpus entry: a `Document`'s
    `text_for_scoring`, or a plain string as it is."""
    return document.text_for_scoring if isinstance(document, Document) else str(document)


@dataclass
class DatasetIssues:
    """What was dropped or doubtful while loading (all counts, for reports)."""

    qrels_unknown_queries: int = 0  # judgements whose query id is not in queries.jsonl
    qrels_unknown_docs: int = 0  # judgements whose corpus id is not in corpus.jsonl
    queries_without_positive: list[str] = field(default_factory=list)  # judged, but no score > 0
    empty_documents: int = 0  # documents with neither title nor text
    # judgements kept although their document is not in the corpus (a TREC qrels file only:
    # they still count in the ideal ranking, as in trec_eval)
    qrels_outside_corpus_kept: int = 0

    def to_dict(self) -> dict:
        return {
            "qrels_unknown_queries": self.qrels_unknown_queries,
            "qrels_unknown_docs": self.qrels_unknown_docs,
            "queries_without_positive": len(self.queries_without_positive),
            "empty_documents": self.empty_documents,
            "qrels_outside_corpus_kept": self.qrels_outside_corpus_kept,
        }


@dataclass
class BeirDataset:
    """A loaded BEIR split. `queries` holds only the queries judged in `qrels`."""

    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: Qrels
    name: str = ""
    split: str = "test"
    issues: DatasetIssues = field(default_factory=DatasetIssues)

    def document_texts(self, doc_ids: Iterable[str] | None = None) -> list[str]:
        ids = self.corpus.keys() if doc_ids is None else doc_ids
        return [self.corpus[d].text_for_scoring for d in ids]


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}:{line_number}: not valid JSON ({error.msg}); each line must be one JSON object"
                ) from error
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}")
            yield line_number, record


def _require_id(record: dict, path: Path, line_number: int) -> str:
    if "_id" not in record:
        raise ValueError(f'{path}:{line_number}: missing the "_id" field')
    value = record["_id"]
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ValueError(f'{path}:{line_number}: "_id" must be a non-empty string, got {value!r}')
    return str(value)


def _optional_str(record: dict, key: str, path: Path, line_number: int) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f'{path}:{line_number}: "{key}" must be a string, got {type(value).__name__}')
    return value


def _records_by_id(path: Path, kind: str, item: str, fields: str) -> Iterator[tuple[int, str, dict]]:
    """(line number, id, record) of a BEIR `<kind>.jsonl` of unique `item` ids, or an error naming the line."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{kind} file not found: {path} (a BEIR {kind}.jsonl has one {{{fields}}} object a line)"
        )
    seen: set[str] = set()
    for line_number, record in _read_jsonl(path):
        record_id = _require_id(record, path, line_number)
        if record_id in seen:
            raise ValueError(f"{path}:{line_number}: duplicate {item} id {record_id!r}")
        seen.add(record_id)
        yield line_number, record_id, record


def load_corpus(path: str | Path) -> dict[str, Document]:
    """Read a BEIR `corpus.jsonl`. Duplicate ids and malformed lines raise with the line number."""
    path = Path(path)
    corpus: dict[str, Document] = {}
    empty = 0
    for line_number, doc_id, record in _records_by_id(path, "corpus", "document", '"_id", "title", "text"'):
        title = _optional_str(record, "title", path, line_number)
        text = _optional_str(record, "text", path, line_number)
        if not title.strip() and not text.strip():
            empty += 1
        corpus[doc_id] = Document(doc_id, title, text)
    if not corpus:
        raise ValueError(f"the corpus {path} is empty: it needs at least one document")
    if empty:
        logger.warning("%s: %d document(s) have neither title nor text", path, empty)
    return corpus


def load_queries(path: str | Path) -> dict[str, str]:
    """Read a BEIR `queries.jsonl` into {query_id: text}."""
    path = Path(path)
    queries: dict[str, str] = {}
    for line_number, query_id, record in _records_by_id(path, "queries", "query", '"_id", "text"'):
        if "text" not in record:
            raise ValueError(f'{path}:{line_number}: missing the "text" field')
        queries[query_id] = _optional_str(record, "text", path, line_number)
    return queries


def load_qrels(path: str | Path) -> Qrels:
    """Read a BEIR `qrels/<split>.tsv` (header `query-id corpus-id score`)."""
    path = Path(path)
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.tsv")) if path.parent.is_dir() else []
        hint = f"; splits available: {', '.join(available)}" if available else ""
        raise FileNotFoundError(f"no relevance judgements for this split: {path} is missing{hint}")
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if line_number == 1 and fields[0].strip().lower() in {"query-id", "query_id", "qid"}:
                continue  # header
            if len(fields) != 3:
                raise ValueError(
                    f"{path}:{line_number}: expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}"
                )
            query_id, doc_id, score_text = (f.strip() for f in fields)
            try:
                score = int(float(score_text))
            except ValueError as error:
                raise ValueError(f"{path}:{line_number}: score {score_text!r} is not a number") from error
            if not query_id or not doc_id:
                raise ValueError(f"{path}:{line_number}: empty query-id or corpus-id")
            qrels.setdefault(query_id, {})[doc_id] = score
    return qrels


def load_beir(
    directory: str | Path, split: str = "test", qrels_file: str | Path | None = None
) -> BeirDataset:
    """Load a BEIR dataset directory for one split, validating as it goes.

    Judgements whose query or document id is unknown are dropped (warned, counted in
    `issues`); queries judged without any positive document stay in `qrels` and
    `queries` and are listed in `issues.queries_without_positive` (the evaluator
    skips them with a note).

    `qrels_file`: TREC-format qrels (`qid iter docid relevance`) read instead of
    `qrels/<split>.tsv`; the dataset's split is then named after the file. Its judgements of
    documents missing from the corpus are kept (counted in `issues.qrels_outside_corpus_kept`):
    trec_eval keeps them, so they count in the ideal ranking that NDCG divides by and in
    recall's denominator. Official qrels judge documents a rerank set's corpus lacks (TREC DL),
    and the published figures include them.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"dataset directory not found: {directory}")
    corpus = load_corpus(directory / "corpus.jsonl")
    all_queries = load_queries(directory / "queries.jsonl")
    if qrels_file is None:
        qrels_source = f"qrels/{split}.tsv"
        raw_qrels = load_qrels(directory / "qrels" / f"{split}.tsv")
    else:
        qrels_source, split = str(qrels_file), Path(qrels_file).stem
        raw_qrels = read_trec_qrels(qrels_file)
    issues = DatasetIssues(empty_documents=sum(1 for d in corpus.values() if not d.text_for_scoring.strip()))
    # a qrels file replaces the split's judgements as they are: trec_eval keeps unknown documents too
    keep_outside_corpus = qrels_file is not None
    qrels = _usable_qrels(raw_qrels, all_queries, corpus, issues, keep_outside_corpus)
    _log_dropped_judgements(issues, directory, qrels_source)
    if not qrels:
        raise ValueError(
            f"{directory}: no usable judgements in {qrels_source} (every judgement names an unknown query or document id)"
        )
    issues.queries_without_positive = sorted(
        q for q, judged in qrels.items() if not any(s > 0 for s in judged.values())
    )
    if issues.queries_without_positive:
        logger.warning(
            "%s: %d judged quer(y/ies) have no relevant document (no score > 0), e.g. %s",
            directory,
            len(issues.queries_without_positive),
            issues.queries_without_positive[0],
        )
    queries = {q: all_queries[q] for q in all_queries if q in qrels}
    logger.info(
        "loaded %s/%s: %d documents, %d judged queries", directory.name, split, len(corpus), len(queries)
    )
    return BeirDataset(
        corpus=corpus, queries=queries, qrels=qrels, name=directory.name, split=split, issues=issues
    )


def _usable_qrels(
    raw_qrels: Qrels,
    queries: Mapping[str, str],
    corpus: Mapping[str, Document],
    issues: DatasetIssues,
    keep_outside_corpus: bool,
) -> Qrels:
    """The judgements of known queries; those of documents missing from the corpus are dropped, or
    kept with `keep_outside_corpus`. What is dropped or kept is counted in `issues`."""
    qrels: Qrels = {}
    for query_id, judged in raw_qrels.items():
        if query_id not in queries:
            issues.qrels_unknown_queries += len(judged)
            continue
        in_corpus = {d: s for d, s in judged.items() if d in corpus}
        if keep_outside_corpus:
            issues.qrels_outside_corpus_kept += len(judged) - len(in_corpus)
        else:
            issues.qrels_unknown_docs += len(judged) - len(in_corpus)
            judged = in_corpus
        if judged:
            qrels[query_id] = dict(judged)
    return qrels


def _log_dropped_judgements(issues: DatasetIssues, directory: Path, qrels_source: str) -> None:
    if issues.qrels_unknown_queries:
        logger.warning(
            "%s: %d judgement(s) name a query id missing from queries.jsonl; dropped",
            directory,
            issues.qrels_unknown_queries,
        )
    if issues.qrels_outside_corpus_kept:
        logger.info(
            "%s: %d judgement(s) name documents outside the corpus; kept, as trec_eval keeps them",
            qrels_source,
            issues.qrels_outside_corpus_kept,
        )
    if issues.qrels_unknown_docs:
        logger.warning(
            "%s: %d judgement(s) name a document id missing from corpus.jsonl; dropped",
            directory,
            issues.qrels_unknown_docs,
        )


def write_corpus(corpus: Mapping[str, Document], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for doc in corpus.values():
            handle.write(
                json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}, ensure_ascii=False)
                + "\n"
            )


def write_beir(dataset: BeirDataset, directory: str | Path) -> Path:
    """Write `dataset` as a BEIR directory (corpus, queries, qrels/<split>.tsv)."""
    directory = Path(directory)
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    write_corpus(dataset.corpus, directory / "corpus.jsonl")
    with (directory / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for query_id, text in dataset.queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n")
    with (directory / "qrels" / f"{dataset.split}.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id, judged in dataset.qrels.items():
            for doc_id, score in judged.items():
                handle.write(f"{query_id}\t{doc_id}\t{score}\n")
    return directory
