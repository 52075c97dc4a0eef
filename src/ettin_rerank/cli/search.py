"""`index` and `search`: retrieve-then-rerank over a user's documents (a folder, one file, a
corpus.jsonl) or an index built from them."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.loading import LONG_DOCUMENT_MODES
from ..config.retrieval import PassageSettings, SearchOptions
from .options import (
    Flags,
    add_dense_model_argument,
    add_loading_options,
    add_model_argument,
    add_quiet_argument,
    check_positive,
    defaults_of,
    optional_reranker,
    show_progress,
)
from .resident import add_keep_loaded_argument, search_in_resident, start_resident

if TYPE_CHECKING:
    from ..inference.reranker import Reranker
    from ..retrieval.index import SearchHit, SearchResults

# The library (retrieval/: numpy, bm25s) is imported when `index` parses its own flags or a command
# runs; `search --help` takes its defaults from config/ and imports neither.


def register(subparsers) -> None:
    subparsers.add_parser(
        "index",
        help="index your documents for `search`",
        description="Index a folder of documents (text, Markdown, reStructuredText, HTML, PDF with the pdf "
        "extra; binary and hidden files skipped; long files cut into passages), one file, or a BEIR corpus.jsonl.",
        add_arguments=add_index_arguments,
    ).set_defaults(handler=run_index)
    subparsers.add_parser(
        "search",
        help="search a folder of documents, a file or an index from `index`; rerank the first stage's top-k",
        description="Retrieve the top-k with the index's first stage (or BM25 built in memory over a folder of "
        "documents, one file or a corpus.jsonl), "
        "rerank with --model (default: the bundled reranker), print the best n.",
        add_arguments=add_search_arguments,
    ).set_defaults(handler=run_search)


def add_index_arguments(index: argparse.ArgumentParser) -> None:
    from ..retrieval import SearchIndex
    from ..retrieval.first_stage import INDEXING_FIRST_STAGES

    INDEX = defaults_of(SearchIndex.build)
    flags = Flags(index, INDEX)
    index.add_argument(
        "corpus",
        type=Path,
        help="a folder of documents, one file, a corpus.jsonl or a BEIR dataset directory",
    )
    index.add_argument("-o", "--output", type=Path, required=True, help="index directory to write")
    # A TREC run answers only its own queries, so `index` offers the stages that index a corpus.
    index.add_argument("--first-stage", choices=INDEXING_FIRST_STAGES, default=INDEX.first_stage)
    add_dense_model_argument(index)
    flags.add("--device")
    add_passage_arguments(index)
    add_quiet_argument(index)


def add_search_arguments(search: argparse.ArgumentParser) -> None:
    flags = Flags(search, defaults_of(SearchOptions))
    search.add_argument(
        "index_dir",
        type=Path,
        metavar="INDEX_OR_DOCS",
        help="an index from `ettin-rerank index`, or a folder of documents / one file / a corpus.jsonl "
        "(BM25 built in memory)",
    )
    search.add_argument("query")
    add_model_argument(search, "--model", "-m")
    flags.add("--top-k", "first-stage candidates, the most reranked (default %(default)s)")
    flags.add("-n", "results to print (default %(default)s)")
    flags.add(
        "--budget",
        "seconds of reranking: candidates are reranked in first-stage order, in small batches, while the "
        "measured speed says the next batch fits; the rest follow in first-stage order. "
        "0: no limit, rerank all --top-k (default %(default)s)",
        dest="budget_s",
        metavar="SECONDS",
        type=float,
    )
    flags.add(
        "--depth",
        "rerank exactly the first N candidates, however long it takes (overrides --budget)",
        metavar="N",
        type=int,
    )
    search.add_argument(
        "--passages",
        dest="one_per_file",
        action="store_false",
        help="list every matching passage, not only each file's best",
    )
    search.add_argument(
        "--no-rerank", action="store_true", help="print the first stage's ranking, without a reranker"
    )
    flags.add(
        "--long-documents",
        "chunk: score a document longer than the reranker reads in overlapping windows and keep the best, "
        "shown as the snippet (default); truncate: read its start only (counted in the output)",
        choices=LONG_DOCUMENT_MODES,
    )
    search.add_argument("--json", action="store_true", help="print JSON instead of text")
    flags.add("--snippet-width", "characters of each result's excerpt (default %(default)s)")
    add_passage_arguments(search, when="for a folder searched directly")
    search.add_argument(
        "--no-cache",
        action="store_true",
        help="read a folder afresh and keep nothing (by default its index is kept in the user's cache "
        "and updated by each file's size and modification time; see `ettin-rerank cache`)",
    )
    add_keep_loaded_argument(search)
    add_loading_options(search)
    add_quiet_argument(search)


def add_passage_arguments(parser: argparse.ArgumentParser, when: str = "") -> None:
    PASSAGES = defaults_of(PassageSettings)
    parser.add_argument(
        "--passage-words",
        type=int,
        default=PASSAGES.words,
        metavar="N",
        help=f"cut files longer than N words into passages of N words{' ' + when if when else ''}; "
        "0: one document per file (default %(default)s)",
    )
    parser.add_argument(
        "--passage-overlap",
        type=int,
        default=PASSAGES.overlap,
        metavar="N",
        help="words consecutive passages share (default %(default)s)",
    )


def passage_settings(args: argparse.Namespace) -> PassageSettings:
    return PassageSettings(words=args.passage_words, overlap=args.passage_overlap)


def warn_skipped(reading) -> None:
    """The one warning about files skipped while reading documents."""
    summary = reading.summary() if reading is not None else None
    if summary:
        print(f"warning: {summary}", file=sys.stderr)


def run_index(args) -> int:
    from ..retrieval import SearchIndex
    from ..retrieval.user_corpus import read_user_corpus

    progress = show_progress(args)
    passages = passage_settings(args)
    corpus, reading = read_user_corpus(args.corpus, passages, show_progress=progress)
    # our bar covered reading; the first stage's own (bm25s, sentence-transformers) stay off
    index = SearchIndex.build(
        corpus,
        first_stage=args.first_stage,
        dense_model=args.dense_model,
        device=args.device,
        show_progress=False,
        passages=passages,
        reading=reading,
    )
    index.save(args.output)
    split = f" from {reading.files_read} files" if reading.passages != reading.files_read else ""
    print(f"indexed {len(corpus)} documents{split} ({args.first_stage}) into {args.output}")
    warn_skipped(reading)
    return 0


class BackgroundLoad:
    """The reranker loading (and running once, so its first batch is not slower than the rest) in
    a thread while the index is opened and the first stage runs; `result()` waits for it."""

    def __init__(self, args: argparse.Namespace):
        self._reranker: Reranker | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, args=(args,), name="load-reranker", daemon=True)
        self._thread.start()

    def _load(self, args: argparse.Namespace) -> None:
        try:
            self._reranker = load_warm_reranker(args)
        except BaseException as error:  # raised again in the caller's thread
            self._error = error

    def result(self) -> Reranker | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._reranker


class Loaded:
    """A reranker loaded before the search started (the resident process's)."""

    def __init__(self, reranker: Reranker):
        self._reranker = reranker

    def result(self) -> Reranker:
        return self._reranker


def load_warm_reranker(args: argparse.Namespace) -> Reranker | None:
    """The search's reranker (None with --no-rerank or no model), run once so that its first batch
    is not slower than the rest."""
    reranker = optional_reranker(args)
    if reranker is not None:
        reranker.score_pairs([("warm up", "the first call sets up the kernels")])
    return reranker


def run_search(args) -> int:
    """In the resident process when one holds this search's model (`resident.py`), else here; a
    search that loaded the model here leaves one behind for the next (--keep-loaded)."""
    if args.keep_loaded < 0:
        raise ValueError(f"--keep-loaded must be at least 0 minutes, got {args.keep_loaded:g}")
    if args.keep_loaded > 0:
        answered = search_in_resident(args)
        if answered is not None:
            return answered
    code = search_documents(args)
    if args.keep_loaded > 0 and code == 0 and start_resident(args) is not None:
        print(
            f"note: the model stays loaded in a background process for {args.keep_loaded:g} idle minutes, so "
            "the next searches skip loading it (`ettin-rerank resident stop` ends it; --keep-loaded 0: none)",
            file=sys.stderr,
        )
    return code


def search_documents(args: argparse.Namespace, reranker: Reranker | None = None) -> int:
    """The search itself, printed; `reranker`: one already loaded (else --model's, loaded while the
    index opens)."""
    from ..retrieval import SearchIndex
    from ..retrieval.index import check_search_arguments

    # everything the query and flags can get wrong is refused before the model starts loading
    for flag, value in [("--top-k", args.top_k), ("-n", args.n), ("--depth", args.depth)]:
        check_positive(flag, value)  # named as typed; the library's check below covers the rest
    check_positive("--snippet-width", args.snippet_width)
    check_search_arguments(args.query, args.top_k, args.n, args.budget_s, args.depth)
    progress = show_progress(args)
    loading: BackgroundLoad | Loaded = Loaded(reranker) if reranker is not None else BackgroundLoad(args)
    index = SearchIndex.open(
        args.index_dir,
        device=args.device,
        passages=passage_settings(args),
        show_progress=progress,
        cache=not args.no_cache,
    )
    warn_skipped(index.reading)
    reranker = loading.result()
    results = index.search(
        args.query,
        top_k=args.top_k,
        n=args.n,
        reranker=reranker,
        long_documents=args.long_documents,
        show_progress=progress,
        budget_s=args.budget_s,
        depth=args.depth,
        one_per_file=args.one_per_file,
        snippet_width=args.snippet_width,
    )
    truncated = sum(hit.truncated for hit in results)
    if args.json:
        payload = {
            "query": args.query,
            "reranked": reranker is not None,
            "long_documents": args.long_documents if reranker is not None else None,
            "truncated": truncated,
            "one_per_file": args.one_per_file,
            **results.to_dict(),
            "results": [hit.to_dict(args.snippet_width) for hit in results],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    if not results:
        print("no results (no document shares a term with the query)")
        return 0
    stage = index.first_stage.name
    for hit in results:
        if hit.reranked:
            relevance = (
                f"  relevance {hit.probability:.2f} {hit.relevance}" if hit.probability is not None else ""
            )
            where = f"rerank score {hit.score:.4f}; {stage} #{hit.first_stage_rank}"
        elif reranker is not None:
            relevance = "  not reranked"
            where = f"{stage} score {hit.first_stage_score:.4f}, #{hit.first_stage_rank}"
        else:
            relevance = ""
            where = f"{stage} score {hit.score:.4f}"
        if hit.truncated:
            where += "; truncated"
        print(f"{hit.rank:>3}. {hit.file}{place_in_file(hit)}{relevance}  ({where})")
        if hit.title:
            print(f"     {hit.title}")
        print(f"     {hit.snippet(args.snippet_width)}")
    if reranker is not None:
        print(rerank_summary(results))
    if truncated and reranker is not None:  # only a reranker truncates
        print(
            f"note: {truncated} result(s) above were cut to the reranker's {reranker.max_length} tokens "
            "(--long-documents truncate): the rest of those documents was not read",
            file=sys.stderr,
        )
    return 0


def place_in_file(hit: SearchHit) -> str:
    """Where a passage of a long file is in it (", passage 12 (words 2201-2400)"); "" for a whole file."""
    if hit.passage is None:
        return ""
    words = f" (words {hit.words[0]}-{hit.words[1]})" if hit.words else ""
    return f", passage {hit.passage}{words}"


def rerank_summary(results: SearchResults) -> str:
    """One line: how many candidates were reranked, in what time, and what decided it."""
    line = f"reranked {results.reranked} of {results.candidates} candidates in {results.rerank_seconds:.2f} s"
    if results.depth is not None:
        return f"{line} (--depth {results.depth})"
    if results.budget_s is None:
        return f"{line} (no budget)"
    more = "; --depth N or --budget S for more" if results.reranked < results.candidates else ""
    return f"{line} (budget {results.budget_s:g} s{more})"
