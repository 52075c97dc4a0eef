"""Fit and measure score calibration: from raw scores to P(relevant).

The pieces compose: `labelled_pairs` (a first stage's top-`depth` per query, each pair
labelled by the qrels) -> `score_labelled_pairs` (any `scoring.PairScorer`, raw scores) ->
`fit_calibration` (Platt or isotonic, with scikit-learn) -> `measure_calibration` (expected
calibration error and Brier score, sigmoid(raw) vs calibrated) -> `plot_reliability`.
`load_or_score` caches the scored pairs as `.npz`, so measuring again never rescores.

The fitted map is an `inference.calibration.Calibration`; applying it needs numpy alone.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..inference.calibration import CALIBRATION_METHODS, Calibration
from ..retrieval.beir import BeirDataset, load_beir, scoring_text
from ..retrieval.first_stage import (
    DEFAULT_FIRST_STAGE,
    build_first_stage,
    first_stage_class,
    first_stage_settings,
)
from ..scoring import PairScorer, checked_scores

logger = logging.getLogger(__name__)

DEFAULT_DEPTH = 100  # the main job's first-stage depth: calibrate on the pairs a reranker sees
DEFAULT_BINS = 15
# What users of Cohere, Jina and LangChain keep: `relevance_score > 0.5`. Reports say what it keeps.
KEEP_THRESHOLD = 0.5
DEFAULT_FIT_SPLIT = "train"  # fit on training judgements ...
EVALUATION_SPLIT = "test"  # ... and measure on held-out ones
# Platt scaling is an unregularised logistic fit on one feature; a large C makes scikit-learn's
# L2 penalty negligible without relying on penalty=None (newer than our oldest supported release).
PLATT_C = 1e6
# Bumped when what a cached .npz holds changes meaning, so an old cache is rescored, not misread.
CACHE_VERSION = 1


def is_relevant(relevance: int) -> bool:
    """The one labelling rule: a judged relevance above 0 (graded qrels included); unjudged is 0."""
    return relevance > 0


@dataclass(frozen=True)
class PairSource:
    """Where labelled pairs come from: a BEIR split, a first stage and how deep it goes."""

    dataset: str  # BEIR directory
    split: str = EVALUATION_SPLIT
    first_stage: str = DEFAULT_FIRST_STAGE  # a first-stage spec: bm25, dense, hybrid or run:FILE
    depth: int = DEFAULT_DEPTH
    max_queries: int | None = None  # a seeded sample of the judged queries (None: all)
    seed: int = 0

    def __post_init__(self) -> None:
        first_stage_class(self.first_stage)  # an unknown spec fails before any loading
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1, got {self.depth}")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be at least 1, got {self.max_queries}")

    @property
    def label(self) -> str:
        """A file-name-safe name for reports: `<dataset>-<split>[-<N>q]`."""
        name = f"{Path(self.dataset).resolve().name}-{self.split}"
        return f"{name}-{self.max_queries}q" if self.max_queries else name

    def describe(self) -> dict[str, Any]:
        settings = first_stage_class(self.first_stage).describe(first_stage_settings(self.first_stage))
        return {
            "dataset": Path(self.dataset).resolve().name,
            "split": self.split,
            "first_stage": self.first_stage,
            "depth": self.depth,
            "max_queries": self.max_queries,
            "seed": self.seed if self.max_queries else None,
            **settings,
        }


@dataclass(frozen=True)
class LabelledPairs:
    """A first stage's top-`depth` per query, each pair labelled 1 when the qrels call it relevant."""

    pairs: list[tuple[str, str]]
    labels: np.ndarray  # (pairs,) int8, 0 or 1
    query_ids: list[str]  # (pairs,) the query each pair belongs to
    description: dict[str, Any]  # the source, plus queries, pairs and relevant pairs


def labelled_pairs(
    source: PairSource, dataset: BeirDataset | None = None, show_progress: bool = True
) -> LabelledPairs:
    """Retrieve with `source.first_stage` over the whole corpus and label the top `source.depth`.

    Only queries with at least one relevant judgement are used, as in evaluation. Relevant
    documents the first stage misses are not added: the pairs are the ones a reranker sees.
    """
    if dataset is None:
        dataset = load_beir(source.dataset, source.split)
    query_ids = sorted(
        q for q, judged in dataset.qrels.items() if any(is_relevant(r) for r in judged.values())
    )
    if not query_ids:
        raise ValueError(
            f"{source.dataset} ({source.split}): no query has a relevant judgement; nothing to calibrate on"
        )
    if source.max_queries is not None and source.max_queries < len(query_ids):
        query_ids = sorted(random.Random(source.seed).sample(query_ids, source.max_queries))
    queries = {q: dataset.queries[q] for q in query_ids}
    stage = build_first_stage(source.first_stage, dataset.corpus, show_progress=show_progress)
    run = stage.search(queries, k=source.depth, show_progress=show_progress)
    pairs: list[tuple[str, str]] = []
    labels: list[int] = []
    pair_queries: list[str] = []
    for query_id in query_ids:
        judged = dataset.qrels[query_id]
        for doc_id in list(run.get(query_id, {}))[: source.depth]:
            pairs.append((queries[query_id], scoring_text(dataset.corpus[doc_id])))
            labels.append(int(is_relevant(judged.get(doc_id, 0))))
            pair_queries.append(query_id)
    label_array = np.asarray(labels, dtype=np.int8)
    description = {
        **source.describe(),
        "queries": len(query_ids),
        "pairs": len(pairs),
        "relevant_pairs": int(label_array.sum()),
    }
    logger.info(
        "%s: %d queries, %d pairs, %d relevant", source.label, len(query_ids), len(pairs), label_array.sum()
    )
    return LabelledPairs(pairs=pairs, labels=label_array, query_ids=pair_queries, description=description)


@dataclass(frozen=True)
class ScoredPairs:
    """Raw scores and labels of labelled pairs: all that fitting and measuring need."""

    scores: np.ndarray  # (pairs,) float32, raw (no activation)
    labels: np.ndarray  # (pairs,) int8
    query_ids: np.ndarray  # (pairs,) str
    description: dict[str, Any]  # the pairs' description plus "model"

    def save(self, path: str | Path, key: dict[str, Any] | None = None) -> Path:
        """An .npz with the arrays, the description and the `key` a later `load` must match."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:  # a handle: np.savez would append .npz to a str path
            np.savez(
                handle,
                scores=self.scores,
                labels=self.labels,
                query_ids=self.query_ids.astype(str),
                description=np.array(json.dumps(self.description)),
                key=np.array(json.dumps(key or {}, sort_keys=True)),
            )
        return path

    @classmethod
    def load(cls, path: str | Path, key: dict[str, Any] | None = None) -> ScoredPairs | None:
        """What `save` wrote, or None when the file is absent, unreadable or saved for another key."""
        path = Path(path)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if key is not None and str(data["key"]) != json.dumps(key, sort_keys=True):
                    logger.info("%s was scored for other settings; rescoring", path)
                    return None
                return cls(
                    scores=data["scores"].astype(np.float32),
                    labels=data["labels"].astype(np.int8),
                    query_ids=data["query_ids"],
                    description=json.loads(str(data["description"])),
                )
        except (OSError, ValueError, KeyError) as error:
            logger.warning("cannot read cached scores %s (%s); rescoring", path, error)
            return None


def score_labelled_pairs(
    scorer: PairScorer, labelled: LabelledPairs, pairs_per_call: int = 1024, show_progress: bool = True
) -> ScoredPairs:
    """Raw scores for every pair, in groups of `pairs_per_call` so a progress bar can follow."""
    scores = np.empty(len(labelled.pairs), dtype=np.float32)
    with tqdm(total=len(labelled.pairs), desc="scoring", unit="pair", disable=not show_progress) as bar:
        for start in range(0, len(labelled.pairs), pairs_per_call):
            chunk = labelled.pairs[start : start + pairs_per_call]
            scores[start : start + len(chunk)] = checked_scores(
                scorer.score_pairs(chunk), len(chunk), scorer.name
            )
            bar.update(len(chunk))
    return ScoredPairs(
        scores=scores,
        labels=labelled.labels,
        query_ids=np.asarray(labelled.query_ids, dtype=str),
        description={**labelled.description, "model": scorer.name},
    )


def model_fingerprint(name_or_path: str) -> dict[str, Any]:
    """Name, and for a local directory the size and mtime of its weight files, so a cache of
    scores is not reused after the weights change (calibration.json is not a weight file)."""
    fingerprint: dict[str, Any] = {"model": name_or_path}
    directory = Path(name_or_path)
    if directory.is_dir():
        weights = sorted(
            p for p in directory.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt") and p.is_file()
        )
        fingerprint["weights"] = {
            str(p.relative_to(directory)): [p.stat().st_size, p.stat().st_mtime_ns] for p in weights
        }
    return fingerprint


def load_or_score(
    scorer: PairScorer,
    source: PairSource,
    cache_path: str | Path | None = None,
    scoring_settings: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> ScoredPairs:
    """Scored pairs of `source`, read from `cache_path` when it holds these very settings.

    `scoring_settings` (e.g. max_length, dtype) join the cache key: they change the scores.
    """
    key = {
        "version": CACHE_VERSION,
        "source": asdict(source) | {"dataset": str(Path(source.dataset).resolve())},
        **model_fingerprint(scorer.name),
        "scoring": scoring_settings or {},
    }
    if cache_path is not None:
        cached = ScoredPairs.load(cache_path, key)
        if cached is not None:
            logger.info("using cached scores %s (%d pairs)", cache_path, len(cached.scores))
            return cached
    # other libraries' bars (bm25s, sentence-transformers) stay off, as in `evaluate`; ours is the scoring bar
    scored = score_labelled_pairs(
        scorer, labelled_pairs(source, show_progress=False), show_progress=show_progress
    )
    if cache_path is not None:
        scored.save(cache_path, key)
    return scored


def _check_scores_and_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.shape[0]} scores for {labels.shape[0]} labels")
    if scores.size == 0:
        raise ValueError("no pairs given")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    return scores, labels.astype(np.int8)


def fit_calibration(
    scores: np.ndarray, labels: np.ndarray, method: str = "platt", fitted_on: dict[str, Any] | None = None
) -> Calibration:
    """A monotone map from raw score to P(relevant), fitted with scikit-learn.

    platt: logistic regression on the raw score (Platt scaling). If the scores rank irrelevant
        pairs above relevant ones, the best monotone fit is flat: the base rate, whatever the score.
    isotonic: `IsotonicRegression(out_of_bounds="clip")`, stored as its thresholds.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}")
    scores, labels = _check_scores_and_labels(scores, labels)
    relevant = int(labels.sum())
    if relevant == 0 or relevant == labels.size:
        kind = "relevant" if relevant == 0 else "irrelevant"
        raise ValueError(
            f"none of the {labels.size} pairs is {kind}: a calibration needs both relevant and irrelevant pairs "
            "(use more queries, or a dataset whose qrels judge the first stage's results)"
        )
    try:
        from sklearn.isotonic import IsotonicRegression
        from sklearn.linear_model import LogisticRegression
    except ImportError as error:  # scikit-learn is only needed to fit, not to apply
        raise ImportError(
            f"fitting a calibration needs scikit-learn: pip install 'ettin-rerank[eval]' ({error})"
        ) from error

    provenance = {
        **(fitted_on or {}),
        "pairs": int(labels.size),
        "relevant_pairs": relevant,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    if method == "platt":
        regression = LogisticRegression(C=PLATT_C, solver="lbfgs", max_iter=1000)
        regression.fit(scores.reshape(-1, 1), labels)
        slope, intercept = float(regression.coef_[0, 0]), float(regression.intercept_[0])
        if slope < 0:
            # The log-likelihood is concave, so the best fit with slope >= 0 lies on slope = 0.
            base_rate = relevant / labels.size
            logger.warning(
                "the scores rank irrelevant pairs above relevant ones (Platt slope %.4g); "
                "using the flat map at the base rate %.4f",
                slope,
                base_rate,
            )
            slope, intercept = 0.0, float(np.log(base_rate / (1 - base_rate)))
        return Calibration("platt", {"a": slope, "b": intercept}, provenance)
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
    isotonic.fit(scores, labels)
    parameters = {
        "x": [float(v) for v in isotonic.X_thresholds_],
        "y": [float(v) for v in isotonic.y_thresholds_],
    }
    return Calibration("isotonic", parameters, provenance)


def sigmoid(scores: np.ndarray) -> np.ndarray:
    """The uncalibrated activation, exactly as the engine and the server compute it (fp32)."""
    from ..inference.scores import apply_activation

    return apply_activation(np.asarray(scores, dtype=np.float32), "sigmoid")


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width bin of predicted probability; means are None for an empty bin."""

    lower: float
    upper: float
    count: int
    mean_probability: float | None
    fraction_relevant: float | None


def reliability_bins(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]: [i/n, (i+1)/n), the last one closed at 1."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    probabilities, labels = _check_scores_and_labels(probabilities, labels)
    if np.any((probabilities < 0) | (probabilities > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    index = np.minimum((probabilities * n_bins).astype(np.int64), n_bins - 1)
    bins = []
    for i in range(n_bins):
        member = index == i
        count = int(member.sum())
        bins.append(
            ReliabilityBin(
                lower=i / n_bins,
                upper=(i + 1) / n_bins,
                count=count,
                mean_probability=float(probabilities[member].mean()) if count else None,
                fraction_relevant=float(labels[member].mean()) if count else None,
            )
        )
    return bins


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS
) -> float:
    """Sum over equal-width bins of (bin size / pairs) * |mean probability - fraction relevant|."""
    bins = reliability_bins(probabilities, labels, n_bins)
    total = sum(b.count for b in bins)
    return float(
        sum(
            b.count / total * abs(b.mean_probability - b.fraction_relevant)
            for b in bins
            if b.mean_probability is not None and b.fraction_relevant is not None  # a non-empty bin
        )
    )


def brier_score(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared difference between probability and label."""
    probabilities, labels = _check_scores_and_labels(probabilities, labels)
    return float(np.mean((probabilities - labels) ** 2))


@dataclass(frozen=True)
class CalibrationMeasurement:
    """How well sigmoid(raw) and the calibrated map predict relevance on one set of pairs."""

    pairs: dict[str, Any]  # the scored pairs' description (dataset, split, model, counts)
    calibration: dict[str, Any]  # method and provenance of the map measured
    n_bins: int
    # "sigmoid" / "calibrated" -> ece, brier, kept (pairs above KEEP_THRESHOLD and how many are relevant), bins
    activations: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        name = f"{self.pairs.get('dataset')}/{self.pairs.get('split')}"
        counts = f"{self.pairs.get('pairs')} pairs, {self.pairs.get('relevant_pairs')} relevant"
        figures = "; ".join(
            f"{activation}: ECE {values['ece']:.4f}, Brier {values['brier']:.4f}"
            for activation, values in self.activations.items()
        )
        return f"{name} ({counts}): {figures}"


def measure_calibration(
    scored: ScoredPairs, calibration: Calibration, n_bins: int = DEFAULT_BINS
) -> CalibrationMeasurement:
    """ECE and Brier score of sigmoid(raw) and of `calibration`, what a 0.5 threshold keeps, and the
    reliability bins."""
    activations = {}
    for activation, probabilities in (
        ("sigmoid", sigmoid(scored.scores)),
        ("calibrated", calibration.probabilities(scored.scores)),
    ):
        kept = probabilities > KEEP_THRESHOLD
        activations[activation] = {
            "ece": expected_calibration_error(probabilities, scored.labels, n_bins),
            "brier": brier_score(probabilities, scored.labels),
            "kept": {
                "threshold": KEEP_THRESHOLD,
                "pairs": int(kept.sum()),
                "relevant": int(scored.labels[kept].sum()),
            },
            "bins": [asdict(b) for b in reliability_bins(probabilities, scored.labels, n_bins)],
        }
    description = {
        **scored.description,
        "pairs": int(scored.labels.size),
        "relevant_pairs": int(scored.labels.sum()),
    }
    return CalibrationMeasurement(
        pairs=description,
        calibration={"method": calibration.method, "fitted_on": calibration.fitted_on},
        n_bins=n_bins,
        activations=activations,
    )


def plot_reliability(measurement: CalibrationMeasurement, path: str | Path) -> Path:
    """A reliability diagram: fraction relevant against mean probability per bin, both
    activations over the diagonal, and each bin's pair count below (log scale)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 6.5))
    curve_axes, count_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    curve_axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect")
    width = 1 / measurement.n_bins
    offsets = {"sigmoid": -width / 4, "calibrated": width / 4}
    colours = {"sigmoid": "tab:orange", "calibrated": "tab:blue"}
    for activation, values in measurement.activations.items():
        filled = [b for b in values["bins"] if b["count"]]
        label = f"{activation} (ECE {values['ece']:.3f}, Brier {values['brier']:.3f})"
        curve_axes.plot(
            [b["mean_probability"] for b in filled],
            [b["fraction_relevant"] for b in filled],
            marker="o",
            markersize=4,
            color=colours.get(activation),
            label=label,
        )
        centres = [(b["lower"] + b["upper"]) / 2 + offsets.get(activation, 0) for b in values["bins"]]
        count_axes.bar(
            centres,
            [b["count"] for b in values["bins"]],
            width=width / 2,
            color=colours.get(activation),
            label=activation,
        )
    curve_axes.set_xlim(0, 1)
    curve_axes.set_ylim(0, 1)
    curve_axes.set_ylabel("fraction relevant")
    pairs = measurement.pairs
    curve_axes.set_title(
        f"{pairs.get('dataset')} {pairs.get('split')}: {pairs.get('pairs')} pairs, "
        f"{pairs.get('relevant_pairs')} relevant\n{measurement.calibration['method']} calibration, "
        f"{measurement.n_bins} bins",
        fontsize=9,
    )
    curve_axes.legend(loc="upper left", fontsize=8, frameon=False)
    count_axes.set_yscale("log")
    count_axes.set_ylabel("pairs per bin")
    count_axes.set_xlabel("predicted probability of relevance")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return path


def write_measurement(
    measurement: CalibrationMeasurement, directory: str | Path, label: str
) -> dict[str, Path]:
    """`<label>.calibration.json` and `<label>.reliability.png` in `directory`; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{label}.calibration.json"
    json_path.write_text(json.dumps(measurement.to_dict(), indent=2) + "\n", encoding="utf-8")
    return {"json": json_path, "png": plot_reliability(measurement, directory / f"{label}.reliability.png")}
