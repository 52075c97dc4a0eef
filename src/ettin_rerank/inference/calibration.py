"""`Calibration`: a stored monotone map from a model's raw score to P(relevant).

Ettin models regress raw teacher logits (about -12 to 22); their sigmoid is not a probability.
`ettin-rerank calibrate` fits this map on labelled pairs (`evaluation/calibration.py`, with
scikit-learn) and stores it as `calibration.json` beside the weights, a file that
sentence-transformers and transformers ignore. Applying it needs numpy alone, so a library
install without scikit-learn can use a calibrated model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_FILE = "calibration.json"
CALIBRATION_METHODS = ("platt", "isotonic")
# Bumped when the JSON layout changes in a way an older reader would misread.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Calibration:
    """A monotone non-decreasing map from raw score to the probability that a pair is relevant.

    method: "platt" or "isotonic".
    parameters: platt: {"a", "b"}, p = 1 / (1 + exp(-(a * score + b))) with a >= 0;
        isotonic: {"x": [...], "y": [...]}, x strictly increasing, y non-decreasing in [0, 1],
        applied with np.interp (scores outside [x[0], x[-1]] take the end values).
    fitted_on: provenance (model, dataset, split, first stage and depth, pairs, relevant
        pairs, date); carried as given, never interpreted.
    """

    method: str
    parameters: dict[str, Any]
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked once here, so a map that is not monotone or not bounded never gets applied.
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {self.method!r}")
        if not isinstance(self.parameters, dict):
            raise ValueError(
                f"calibration parameters must be a mapping, got {type(self.parameters).__name__}"
            )
        if not isinstance(self.fitted_on, dict):
            raise ValueError(f"calibration fitted_on must be a mapping, got {type(self.fitted_on).__name__}")
        if self.method == "platt":
            _check_platt(self.parameters)
        else:
            _check_isotonic(self.parameters)

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Raw scores (any shape) -> float32 probabilities in [0, 1], same shape, computed in fp64."""
        raw = np.asarray(scores, dtype=np.float64)
        if not np.all(np.isfinite(raw)):
            raise ValueError("cannot calibrate non-finite scores (NaN or inf)")
        if self.method == "platt":
            z = float(self.parameters["a"]) * raw + float(self.parameters["b"])
            # tanh form of the logistic: no overflow in exp for any finite z, and monotone.
            probabilities = 0.5 * (1.0 + np.tanh(0.5 * z))
        else:
            x = np.asarray(self.parameters["x"], dtype=np.float64)
            y = np.asarray(self.parameters["y"], dtype=np.float64)
            probabilities = np.interp(raw, x, y)  # clips to y[0] / y[-1] outside [x[0], x[-1]]
        return np.clip(probabilities, 0.0, 1.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "method": self.method,
            "parameters": self.parameters,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"format_version {version!r} is not supported (this version reads {FORMAT_VERSION})"
            )
        missing = [key for key in ("method", "parameters") if key not in data]
        if missing:
            raise ValueError(f"missing key(s) {missing}")
        return cls(method=data["method"], parameters=data["parameters"], fitted_on=data.get("fitted_on", {}))

    @classmethod
    def load(cls, directory: str | Path) -> Calibration | None:
        """The calibration stored in a model directory; None when it has none.

        A file that exists but cannot be read as a calibration is an error naming the file,
        never silently ignored: a caller who asked for calibrated scores must not get others.
        """
        path = Path(directory) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
            raise ValueError(
                f"{path} is not a valid calibration ({error}); re-create it with `ettin-rerank calibrate` "
                "or delete it to use the model uncalibrated"
            ) from error

    def save(self, directory: str | Path) -> Path:
        """Write `calibration.json` into `directory` (which must exist) and return its path."""
        path = Path(directory) / CALIBRATION_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _finite_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"platt parameter {name!r} must be a finite number, got {value!r}")
    return float(value)


def _check_platt(parameters: dict[str, Any]) -> None:
    if set(parameters) != {"a", "b"}:
        raise ValueError(f"platt parameters must be exactly 'a' and 'b', got {sorted(parameters)}")
    slope = _finite_number(parameters["a"], "a")
    _finite_number(parameters["b"], "b")
    if slope < 0:
        # A negative slope would rank higher raw scores as less relevant: the map must be monotone.
        raise ValueError(f"platt slope 'a' must be >= 0 (a monotone non-decreasing map), got {slope}")


def _check_isotonic(parameters: dict[str, Any]) -> None:
    if set(parameters) != {"x", "y"}:
        raise ValueError(f"isotonic parameters must be exactly 'x' and 'y', got {sorted(parameters)}")
    try:
        x = np.asarray(parameters["x"], dtype=np.float64)
        y = np.asarray(parameters["y"], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"isotonic 'x' and 'y' must be lists of numbers ({error})") from error
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(
            f"isotonic 'x' and 'y' must be non-empty lists of equal length, got {x.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("isotonic 'x' and 'y' must be finite")
    if np.any(np.diff(x) <= 0):
        raise ValueError("isotonic 'x' must be strictly increasing")
    if np.any(np.diff(y) < 0):
        raise ValueError("isotonic 'y' must be non-decreasing (a monotone map)")
    if y[0] < 0 or y[-1] > 1:
        raise ValueError("isotonic 'y' must lie in [0, 1]")
