"""The stored calibration map (`inference.calibration`): probabilities, its JSON file, corrupt files.

Fitting and measuring it (`evaluation.calibration`) are tested in tests/evaluation/test_calibration.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ettin_rerank.inference.calibration import CALIBRATION_FILE, Calibration

PLATT = Calibration("platt", {"a": 0.5, "b": -2.0}, {"dataset": "synthetic"})
ISOTONIC = Calibration("isotonic", {"x": [-2.0, 0.0, 3.0], "y": [0.0, 0.2, 0.9]}, {})


@pytest.mark.parametrize("calibration", [PLATT, ISOTONIC], ids=["platt", "isotonic"])
def test_probabilities_are_monotone_bounded_float32_and_keep_shape(calibration):
    scores = np.linspace(-1e6, 1e6, 20001)  # far beyond any logit: no overflow, no NaN
    scores = np.concatenate([scores, np.linspace(-15, 25, 4001)])
    scores.sort()
    probabilities = calibration.probabilities(scores)
    assert probabilities.dtype == np.float32 and probabilities.shape == scores.shape
    assert np.all(np.isfinite(probabilities))
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    assert np.all(np.diff(probabilities) >= 0)
    assert calibration.probabilities(np.zeros((2, 3))).shape == (2, 3)


def test_platt_is_the_logistic_of_a_linear_map():
    scores = np.array([-4.0, 0.0, 4.0, 10.0])
    expected = 1 / (1 + np.exp(-(0.5 * scores - 2.0)))
    np.testing.assert_allclose(PLATT.probabilities(scores), expected, rtol=1e-6)
    assert PLATT.probabilities(np.array([4.0]))[0] == pytest.approx(0.5)


def test_isotonic_interpolates_and_clips_outside_its_range():
    probabilities = ISOTONIC.probabilities(np.array([-100.0, -2.0, -1.0, 0.0, 1.5, 3.0, 100.0]))
    np.testing.assert_allclose(probabilities, [0.0, 0.0, 0.1, 0.2, 0.55, 0.9, 0.9], rtol=1e-6)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        PLATT.probabilities(np.array([0.0, np.nan]))


@pytest.mark.parametrize("calibration", [PLATT, ISOTONIC], ids=["platt", "isotonic"])
def test_json_round_trip(tmp_path, calibration):
    path = calibration.save(tmp_path)
    assert path == tmp_path / CALIBRATION_FILE
    loaded = Calibration.load(tmp_path)
    assert loaded == calibration
    scores = np.linspace(-10, 10, 101)
    np.testing.assert_array_equal(loaded.probabilities(scores), calibration.probabilities(scores))


def test_load_without_a_file_is_none(tmp_path):
    assert Calibration.load(tmp_path) is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "Expecting"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"method": "platt"}), "missing"),
        (json.dumps({"method": "temperature", "parameters": {}}), "method"),
        (json.dumps({"method": "platt", "parameters": {"a": -1.0, "b": 0.0}}), "monotone"),
        (json.dumps({"method": "platt", "parameters": {"a": "1", "b": 0.0}}), "finite number"),
        (json.dumps({"method": "isotonic", "parameters": {"x": [0, 1], "y": [0.5, 0.2]}}), "non-decreasing"),
        (json.dumps({"method": "isotonic", "parameters": {"x": [1, 0], "y": [0.1, 0.2]}}), "increasing"),
        (json.dumps({"method": "isotonic", "parameters": {"x": [0, 1], "y": [0.1, 1.5]}}), r"\[0, 1\]"),
        (json.dumps({"method": "isotonic", "parameters": {"x": [0, 1], "y": [0.1]}}), "equal length"),
        (
            json.dumps({"format_version": 99, "method": "platt", "parameters": {"a": 1, "b": 0}}),
            "format_version",
        ),
    ],
)
def test_corrupt_file_is_a_clear_error_naming_it(tmp_path, content, reason):
    (tmp_path / CALIBRATION_FILE).write_text(content)
    with pytest.raises(ValueError, match=reason) as error:
        Calibration.load(tmp_path)
    assert str(tmp_path / CALIBRATION_FILE) in str(error.value)
    assert "ettin-rerank calibrate" in str(error.value)
