"""`calibrate`: fit a map from raw score to P(relevant) and store it in the model directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..models import ModelChoice
from .options import DATASET_HELP, Flags, add_loading_options, defaults_of, load_reranker

# The library (evaluation/calibration.py: numpy, scikit-learn, matplotlib) is imported when this
# command parses its own flags or runs, never for `ettin-rerank --help` or another command.


def register(subparsers) -> None:
    subparsers.add_parser(
        "calibrate",
        help="fit a map from raw score to the probability of relevance, stored in the model directory",
        description="Score a first stage's top-k on labelled pairs of DATASET (a pair is relevant when its "
        "qrels relevance is above 0), fit Platt scaling or isotonic regression, and store the map in MODEL "
        "as a small JSON file that other tools ignore. Prints expected calibration error and Brier score, "
        "sigmoid(raw) vs calibrated. Fit on training judgements, report on held-out ones.",
        add_arguments=add_calibrate_arguments,
        needs_extra="eval",  # scikit-learn fits, matplotlib draws the reliability diagrams
    ).set_defaults(handler=run_calibrate)


def add_calibrate_arguments(calibrate: argparse.ArgumentParser) -> None:
    from ..evaluation import calibration
    from ..inference.calibration import CALIBRATION_FILE, CALIBRATION_METHODS
    from ..retrieval.first_stage import INDEXING_FIRST_STAGES

    source = defaults_of(calibration.PairSource)
    flags = Flags(calibrate, source)
    calibrate.add_argument(
        "model",
        type=Path,
        metavar="MODEL",
        help=f"local model directory ({CALIBRATION_FILE} is written there)",
    )
    calibrate.add_argument("dataset", metavar="DATASET", help=DATASET_HELP)
    calibrate.add_argument(
        "--split", default=calibration.DEFAULT_FIT_SPLIT, help="qrels split to fit on (default %(default)s)"
    )
    calibrate.add_argument(
        "--method",
        choices=CALIBRATION_METHODS,
        default=CALIBRATION_METHODS[0],
        help="platt (logistic on the raw score) or isotonic (default %(default)s)",
    )
    flags.add("--max-queries", "fit on a seeded sample of N judged queries", type=int, metavar="N")
    flags.add("--seed", "seed of the --max-queries sample (default %(default)s)")
    # Every set is retrieved over its own corpus, so the first stages that index one (not run:FILE).
    calibrate.add_argument("--first-stage", choices=INDEXING_FIRST_STAGES, default=source.first_stage)
    flags.add("--depth", "first-stage documents per query (default %(default)s)")
    calibrate.add_argument(
        "--evaluate",
        action="append",
        default=[],
        metavar="DATASET[:SPLIT]",
        help=f"also measure on this dataset (split default {calibration.EVALUATION_SPLIT}); repeatable",
    )
    calibrate.add_argument(
        "--report",
        type=Path,
        metavar="OUT_DIR",
        help="write JSON and a reliability diagram PNG per set here, and cache scores (.npz) for reruns",
    )
    calibrate.add_argument(
        "--bins", type=int, default=calibration.DEFAULT_BINS, help="ECE bins (default %(default)s)"
    )
    add_loading_options(calibrate)


def parse_dataset_split(value: str, default_split: str | None = None) -> tuple[str, str]:
    """`DIR[:SPLIT]` -> (DIR, SPLIT); a path that exists as given is never split."""
    from ..evaluation.calibration import EVALUATION_SPLIT

    default_split = default_split or EVALUATION_SPLIT
    directory, colon, split = value.rpartition(":")
    if not colon or Path(value).exists() or not directory or "/" in split:
        return value, default_split
    return directory, split


def run_calibrate(args: argparse.Namespace) -> int:
    from ..evaluation.calibration import (
        PairSource,
        fit_calibration,
        load_or_score,
        measure_calibration,
        write_measurement,
    )
    from ..inference.calibration import CALIBRATION_FILE

    if not args.model.is_dir():
        raise FileNotFoundError(
            f"model directory {args.model} does not exist: calibrate writes {CALIBRATION_FILE} "
            "into a local model directory (download a Hub model first)"
        )
    if args.bins < 1:
        raise ValueError(f"--bins must be at least 1, got {args.bins}")
    source_settings = {"first_stage": args.first_stage, "depth": args.depth}
    fit_source = PairSource(
        args.dataset, args.split, max_queries=args.max_queries, seed=args.seed, **source_settings
    )
    evaluate_sources = [PairSource(*parse_dataset_split(value), **source_settings) for value in args.evaluate]
    reranker = load_reranker(ModelChoice(str(args.model), "argument"), args)
    # What changes the scores beyond the weights: part of the cache key.
    scoring_settings = {"max_length": reranker.max_length, "dtype": args.dtype, "quantize": args.quantize}

    def scored(source: PairSource):
        cache = args.report / f"{source.label}.scores.npz" if args.report else None
        return load_or_score(reranker, source, cache, scoring_settings)

    fit_pairs = scored(fit_source)
    calibration = fit_calibration(
        fit_pairs.scores,
        fit_pairs.labels,
        args.method,
        fitted_on={**fit_pairs.description, "model": args.model.resolve().name},
    )
    path = calibration.save(args.model)
    print(f"wrote {path} ({calibration.method}, fitted on {fit_source.label})")

    rows = []
    for source, pairs in [(fit_source, fit_pairs)] + [(s, scored(s)) for s in evaluate_sources]:
        measurement = measure_calibration(pairs, calibration, args.bins)
        role = "fit" if source is fit_source else "held out"
        rows.append((source.label, role, measurement))
        if args.report:
            written = write_measurement(measurement, args.report, source.label)
            print(f"wrote {written['json']}, {written['png']}")
    print()
    print(
        "| set | role | pairs | relevant | ECE sigmoid | ECE calibrated | Brier sigmoid | Brier calibrated "
        "| kept by sigmoid > 0.5 | kept by calibrated > 0.5 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, role, measurement in rows:
        sig, cal = measurement.activations["sigmoid"], measurement.activations["calibrated"]
        print(
            f"| {label} | {role} | {measurement.pairs['pairs']} | {measurement.pairs['relevant_pairs']} "
            f"| {sig['ece']:.4f} | {cal['ece']:.4f} | {sig['brier']:.4f} | {cal['brier']:.4f} "
            f"| {describe_kept(sig['kept'])} | {describe_kept(cal['kept'])} |"
        )
    return 0


def describe_kept(kept: dict) -> str:
    """ "3250 (7.8% relevant)": how many pairs a threshold keeps and how many of those are relevant."""
    if not kept["pairs"]:
        return "0"
    return f"{kept['pairs']} ({100 * kept['relevant'] / kept['pairs']:.1f}% relevant)"
