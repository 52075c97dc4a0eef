"""TREC run and qrels files, the formats trec_eval, Pyserini, Anserini and rank_llm pass around.

    run      qid Q0 docid rank score tag     one retrieved document a line
    qrels    qid iter docid relevance        one judgement a line

Fields are separated by whitespace; the second column of each is ignored, as trec_eval
ignores it. A malformed line raises with the file and line number.

A run is ranked the way trec_eval ranks it: by score, highest first. Equal scores keep the
file's rank column (trec_eval breaks such ties by document id instead; real runs rarely have
any). `read_run` returns each query's documents in that order, which is what `Run`'s
insertion order means everywhere else, so the reranker's top-k cut and the metrics agree.

The results are `beir.Run` and `beir.Qrels` (spelled out here: `beir` reads qrels through this module).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

RUN_FIELDS = "qid Q0 docid rank score tag"
QRELS_FIELDS = "qid iter docid relevance"
DEFAULT_TAG = "ettin-rerank"


def _lines(path: Path, what: str):
    """(line number, fields) of each non-blank line of `path`."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if fields:
                yield line_number, fields


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """A TREC run file as {qid: {docid: score}}, each query's documents best first."""
    path = Path(path)
    rows: dict[str, list[tuple[float, int, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for line_number, fields in _lines(path, "run"):
        where = f"{path}:{line_number}"
        if len(fields) != 6:
            hint = " (this looks like a qrels line; pass it with --qrels)" if len(fields) == 4 else ""
            raise ValueError(
                f"{where}: expected 6 whitespace-separated fields ({RUN_FIELDS}), got {len(fields)}{hint}"
            )
        query_id, _, doc_id, rank_text, score_text, _ = fields
        try:
            rank = int(rank_text)
        except ValueError:
            raise ValueError(f"{where}: rank {rank_text!r} is not an integer ({RUN_FIELDS})") from None
        try:
            score = float(score_text)
        except ValueError:
            raise ValueError(f"{where}: score {score_text!r} is not a number ({RUN_FIELDS})") from None
        if not math.isfinite(score):
            raise ValueError(f"{where}: score {score_text!r} is not finite")
        if (query_id, doc_id) in seen:
            raise ValueError(f"{where}: document {doc_id!r} is listed twice for query {query_id!r}")
        seen.add((query_id, doc_id))
        rows.setdefault(query_id, []).append((score, rank, doc_id))
    if not rows:
        raise ValueError(f"{path}: the run is empty (expected lines of {RUN_FIELDS})")
    run: dict[str, dict[str, float]] = {}
    for query_id, results in rows.items():
        results.sort(key=lambda row: (-row[0], row[1]))  # trec_eval's order; the rank column breaks ties
        run[query_id] = {doc_id: score for score, _, doc_id in results}
    return run


def _check_id(kind: str, value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError(
            f"{kind} {value!r} cannot be written to a TREC file: ids must be non-empty, without whitespace"
        )
    return value


def write_run(run: Mapping[str, Mapping[str, float]], path: str | Path, tag: str = DEFAULT_TAG) -> Path:
    """Write `run` as a TREC run file; ranks follow the score order `read_run` reads back
    (highest first, equal scores in the run's insertion order). Scores round-trip exactly."""
    path = Path(path)
    _check_id("tag", tag)
    lines = []
    for query_id, scores in run.items():
        _check_id("query id", query_id)
        ranked = sorted(scores.items(), key=lambda item: -item[1])  # stable: ties keep insertion order
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            lines.append(f"{query_id} Q0 {_check_id('document id', doc_id)} {rank} {float(score)!r} {tag}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC qrels as {qid: {docid: relevance}}; graded relevance is kept as given."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for line_number, fields in _lines(path, "qrels"):
        where = f"{path}:{line_number}"
        if len(fields) != 4:
            hint = ""
            if line_number == 1 and fields[0].lower() in {"query-id", "query_id", "qid"}:
                hint = " (this is a BEIR qrels/<split>.tsv: put it in the dataset's qrels/ and pass --split)"
            elif len(fields) == 6:
                hint = " (this looks like a run line; pass it as --first-stage run:FILE)"
            raise ValueError(
                f"{where}: expected 4 whitespace-separated fields ({QRELS_FIELDS}), got {len(fields)}{hint}"
            )
        query_id, _, doc_id, relevance_text = fields
        try:
            relevance = int(relevance_text)
        except ValueError:
            raise ValueError(
                f"{where}: relevance {relevance_text!r} is not an integer ({QRELS_FIELDS})"
            ) from None
        judged = qrels.setdefault(query_id, {})
        if judged.get(doc_id, relevance) != relevance:
            raise ValueError(
                f"{where}: document {doc_id!r} is judged twice for query {query_id!r}, "
                f"with {judged[doc_id]} and {relevance}"
            )
        judged[doc_id] = relevance
    if not qrels:
        raise ValueError(f"{path}: the qrels file is empty (expected lines of {QRELS_FIELDS})")
    return qrels
