"""Calibration: fitting and measuring it (`evaluation.calibration`); the stored map itself is tested in
tests/inference/test_calibration.py."""

from __future__ import annotations

import numpy as np
import pytest

from ettin_rerank.evaluation.calibration import (
    PairSource,
    ScoredPairs,
    brier_score,
    expected_calibration_error,
    fit_calibration,
    labelled_pairs,
    load_or_score,
    measure_calibration,
    plot_reliability,
    reliability_bins,
    sigmoid,
)

# --- measuring ----------------------------------------------------------------------------------


def test_ece_and_brier_against_hand_computed_values():
    probabilities = np.array([0.1, 0.1, 0.9, 0.9, 0.5])
    labels = np.array([0, 1, 1, 1, 0])
    # 15 equal-width bins: 0.1 -> bin 1, 0.5 -> bin 7, 0.9 -> bin 13.
    # bin 1: 2 pairs, |0.1 - 0.5| = 0.4; bin 7: 1 pair, |0.5 - 0| = 0.5; bin 13: 2 pairs, |0.9 - 1| = 0.1
    # ECE = 2/5 * 0.4 + 1/5 * 0.5 + 2/5 * 0.1 = 0.30
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.30)
    # Brier = (0.01 + 0.81 + 0.01 + 0.01 + 0.25) / 5
    assert brier_score(probabilities, labels) == pytest.approx(0.218)
    # Two bins: [0, 0.5) holds the 0.1s, [0.5, 1] the 0.5 and the 0.9s (mean 0.7667, 2/3 relevant).
    assert expected_calibration_error(probabilities, labels, n_bins=2) == pytest.approx(
        2 / 5 * 0.4 + 3 / 5 * abs((0.5 + 0.9 + 0.9) / 3 - 2 / 3)
    )


def test_bins_cover_both_ends_and_count_every_pair():
    probabilities = np.array([0.0, 1.0, 1 / 15, 0.999])
    bins = reliability_bins(probabilities, np.array([0, 1, 0, 1]))
    assert len(bins) == 15 and sum(b.count for b in bins) == 4
    assert bins[0].count == 1 and bins[1].count == 1 and bins[14].count == 2
    assert bins[5].mean_probability is None and bins[5].fraction_relevant is None
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([0, 1])) == 0.0


def test_measuring_refuses_bad_input():
    with pytest.raises(ValueError, match="0 or 1"):
        brier_score(np.array([0.5]), np.array([2]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error(np.array([1.5]), np.array([1]))
    with pytest.raises(ValueError, match="2 scores for 1 labels"):
        brier_score(np.array([0.5, 0.5]), np.array([1]))


# --- fitting ------------------------------------------------------------------------------------


def synthetic(a: float = 1.5, b: float = -2.0, n: int = 40_000, seed: int = 0):
    """Scores whose true P(relevant | score) is sigmoid(a * score + b)."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(-6, 6, n)
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-(a * scores + b)))).astype(np.int8)
    return scores, labels


def test_platt_recovers_a_known_map():
    scores, labels = synthetic(a=1.5, b=-2.0)
    calibration = fit_calibration(scores, labels, "platt", fitted_on={"dataset": "synthetic"})
    assert calibration.parameters["a"] == pytest.approx(1.5, abs=0.1)
    assert calibration.parameters["b"] == pytest.approx(-2.0, abs=0.1)
    assert calibration.fitted_on["dataset"] == "synthetic"
    assert calibration.fitted_on["pairs"] == len(labels)
    assert calibration.fitted_on["relevant_pairs"] == int(labels.sum())


def test_isotonic_recovers_a_known_map_and_is_monotone():
    scores, labels = synthetic(a=1.0, b=0.5)
    calibration = fit_calibration(scores, labels, "isotonic")
    grid = np.linspace(-5, 5, 201)
    truth = 1 / (1 + np.exp(-(grid + 0.5)))
    fitted = calibration.probabilities(grid)
    assert np.abs(fitted - truth).mean() < 0.03
    assert np.all(np.diff(fitted) >= 0)
    # Fitted on its own data, isotonic regression is calibrated there to within the binning.
    assert expected_calibration_error(calibration.probabilities(scores), labels) < 0.01


def test_calibrated_beats_sigmoid_when_the_raw_scores_are_shifted():
    scores, labels = synthetic(a=1.0, b=-3.0)  # sigmoid(score) overstates relevance by 3 logits
    calibration = fit_calibration(scores, labels, "platt")
    held_out_scores, held_out_labels = synthetic(a=1.0, b=-3.0, seed=1)
    measurement = measure_calibration(
        ScoredPairs(
            held_out_scores.astype(np.float32), held_out_labels, np.array(["q"] * len(held_out_labels)), {}
        ),
        calibration,
    )
    sigmoid_ece = measurement.activations["sigmoid"]["ece"]
    calibrated_ece = measurement.activations["calibrated"]["ece"]
    assert calibrated_ece < 0.02 < 0.1 < sigmoid_ece
    assert measurement.activations["calibrated"]["brier"] < measurement.activations["sigmoid"]["brier"]
    assert sum(b["count"] for b in measurement.activations["calibrated"]["bins"]) == len(held_out_labels)
    # what `relevance_score > 0.5` keeps: far fewer pairs once calibrated, and mostly relevant ones
    for activation, probabilities in (
        ("sigmoid", sigmoid(held_out_scores)),
        ("calibrated", calibration.probabilities(held_out_scores)),
    ):
        kept = measurement.activations[activation]["kept"]
        assert kept["threshold"] == 0.5 and kept["pairs"] == int((probabilities > 0.5).sum())
        assert kept["relevant"] == int(held_out_labels[probabilities > 0.5].sum())
    sigmoid_kept, calibrated_kept = (measurement.activations[a]["kept"] for a in ("sigmoid", "calibrated"))
    assert (
        calibrated_kept["relevant"] / calibrated_kept["pairs"]
        > 0.5
        > sigmoid_kept["relevant"] / sigmoid_kept["pairs"]
    )


def test_platt_never_inverts_the_ranking():
    scores, labels = synthetic(a=-1.0, b=-1.0)  # relevance falls as the score rises
    calibration = fit_calibration(scores, labels, "platt")
    assert calibration.parameters["a"] == 0.0
    assert calibration.probabilities(np.array([0.0]))[0] == pytest.approx(labels.mean(), rel=1e-6)


def test_fitting_needs_both_classes_and_a_known_method():
    with pytest.raises(ValueError, match="none of the 3 pairs is relevant"):
        fit_calibration(np.array([0.0, 1.0, 2.0]), np.array([0, 0, 0]))
    with pytest.raises(ValueError, match="method"):
        fit_calibration(np.array([0.0, 1.0]), np.array([0, 1]), method="temperature")


def test_sigmoid_matches_the_logistic_without_overflow():
    np.testing.assert_allclose(
        sigmoid(np.array([-2.0, 0.0, 3.0])), 1 / (1 + np.exp(-np.array([-2.0, 0.0, 3.0])))
    )
    assert sigmoid(np.array([-1e6, 1e6])).tolist() == [0.0, 1.0]


# --- labelled pairs, scoring and the cache ------------------------------------------------------


def test_labelled_pairs_label_graded_qrels_and_skip_queries_without_a_relevant_one(tiny_beir):
    labelled = labelled_pairs(PairSource(str(tiny_beir), "test", depth=3), show_progress=False)
    # q4 is judged, but nothing is relevant for it: it is left out, as in evaluation.
    assert sorted(set(labelled.query_ids)) == ["q1", "q2", "q3"]
    assert len(labelled.pairs) == len(labelled.labels) == len(labelled.query_ids) <= 9
    relevant_text = {
        "q1": "Cats Cats are small domesticated carnivorous mammals that purr.",
        "q2": "Photosynthesis converts sunlight, water and carbon dioxide into glucose in plants.",  # graded 2
        "q3": "Volcanoes A volcano erupts molten rock called lava from the Earth's crust.",
    }  # q2's other judgement (d8, Oceans) has relevance 0: not relevant
    for query_id, (_, document), label in zip(
        labelled.query_ids, labelled.pairs, labelled.labels, strict=True
    ):
        assert label == int(document == relevant_text[query_id]), (query_id, document)
    assert labelled.description["relevant_pairs"] == int(labelled.labels.sum()) == 3
    assert labelled.description["first_stage"] == "bm25" and labelled.description["depth"] == 3


def test_max_queries_is_a_seeded_sample(tiny_beir):
    first = labelled_pairs(PairSource(str(tiny_beir), max_queries=2, seed=3), show_progress=False)
    again = labelled_pairs(PairSource(str(tiny_beir), max_queries=2, seed=3), show_progress=False)
    assert len(set(first.query_ids)) == 2 and first.query_ids == again.query_ids


def test_pairs_can_come_from_a_trec_run(tiny_beir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text(
        "q1 Q0 d2 1 9.0 x\nq1 Q0 d1 2 8.0 x\nq3 Q0 d4 1 5.0 x\nq3 Q0 d7 2 4.0 x\nq3 Q0 d8 3 3.0 x\n"
    )
    labelled = labelled_pairs(
        PairSource(str(tiny_beir), first_stage=f"run:{run}", depth=2), show_progress=False
    )
    # q2 is judged relevant but absent from the run: it retrieves nothing; depth cuts q3 at 2
    assert labelled.query_ids == ["q1", "q1", "q3", "q3"]
    assert labelled.labels.tolist() == [0, 1, 1, 0]
    assert labelled.description["run_file"] == str(run)


def test_pair_source_refuses_bad_settings(tiny_beir):
    with pytest.raises(ValueError, match="unknown first stage"):
        PairSource(str(tiny_beir), first_stage="grep")
    with pytest.raises(ValueError, match="max_queries"):
        PairSource(str(tiny_beir), max_queries=0)


def test_scores_are_cached_and_reused_only_for_the_same_settings(
    tiny_beir, tiny_reranker_dir, tmp_path, monkeypatch
):
    from ettin_rerank import Reranker

    reranker = Reranker.from_pretrained(tiny_reranker_dir)
    source = PairSource(str(tiny_beir), depth=4)
    cache = tmp_path / "cache" / "tiny.scores.npz"
    scored = load_or_score(reranker, source, cache, {"max_length": 64}, show_progress=False)
    assert cache.is_file() and scored.description["model"] == reranker.name
    np.testing.assert_array_equal(
        scored.scores, reranker.score_pairs(labelled_pairs(source, show_progress=False).pairs)
    )

    def refuse(pairs):
        raise AssertionError("rescored although the cache holds these settings")

    monkeypatch.setattr(reranker, "score_pairs", refuse)
    cached = load_or_score(reranker, source, cache, {"max_length": 64}, show_progress=False)
    np.testing.assert_array_equal(cached.scores, scored.scores)
    np.testing.assert_array_equal(cached.labels, scored.labels)
    assert cached.description == scored.description
    with pytest.raises(AssertionError, match="rescored"):  # other settings: the cache does not apply
        load_or_score(reranker, source, cache, {"max_length": 32}, show_progress=False)


def test_reliability_diagram_is_a_png(tmp_path):
    scores, labels = synthetic(n=2000)
    scored = ScoredPairs(
        scores.astype(np.float32), labels, np.array(["q"] * len(labels)), {"dataset": "synthetic"}
    )
    measurement = measure_calibration(scored, fit_calibration(scores, labels, "isotonic"))
    path = plot_reliability(measurement, tmp_path / "diagram.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert "sigmoid: ECE" in measurement.summary() and "calibrated: ECE" in measurement.summary()
