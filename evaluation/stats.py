"""Confidence intervals for accuracies: Wilson's interval for one proportion, a face-level bootstrap for a mean
over several attributes (faces are the independent unit; attributes of one face are not independent)."""

from __future__ import annotations

import math

import numpy as np

Z_95 = 1.959963984540054


def wilson_interval(correct: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (good near 0 and 1, unlike the normal approximation)."""
    if total == 0:
        return (float("nan"), float("nan"))
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_accuracy(correct: np.ndarray, known: np.ndarray, rows: np.ndarray | None = None) -> float:
    """Mean over attributes (columns) of each one's accuracy on its known faces (among `rows`, default all)."""
    correct, known = np.asarray(correct, bool), np.asarray(known, bool)
    rows = np.arange(len(correct)) if rows is None else rows
    hits, counts = (correct[rows] & known[rows]).sum(0), known[rows].sum(0)
    present = counts > 0
    return float((hits[present] / counts[present]).mean()) if present.any() else float("nan")


def _face_bootstrap(statistic, faces: int, resamples: int, seed: int) -> tuple[float, tuple[float, float]]:
    """`statistic(rows)` on every face, and its 95% percentile interval over faces drawn with replacement."""
    if faces == 0:
        return float("nan"), (float("nan"), float("nan"))
    estimate = statistic(np.arange(faces))
    rng = np.random.default_rng(seed)
    samples = [statistic(rng.integers(0, faces, faces)) for _ in range(resamples)]
    low, high = np.nanpercentile(samples, [2.5, 97.5])
    return estimate, (float(low), float(high))


def bootstrap_mean_accuracy(
    correct: np.ndarray, known: np.ndarray, resamples: int = 1000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Mean over attributes of per-attribute accuracy, and its 95% percentile interval from resampling faces.

    `correct` and `known` are (faces x attributes) boolean arrays; an attribute's accuracy uses its known faces.
    """
    correct, known = np.asarray(correct, bool), np.asarray(known, bool)
    return _face_bootstrap(lambda rows: mean_accuracy(correct, known, rows), len(correct), resamples, seed)


def bootstrap_paired_difference(
    correct_a: np.ndarray, correct_b: np.ndarray, known: np.ndarray, resamples: int = 1000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Mean accuracy of `correct_a` less that of `correct_b` on the same questions (faces x attributes, as in
    `bootstrap_mean_accuracy`), and its 95% interval from resampling faces, both answers of a face together: the
    paired comparison, much narrower than two separate intervals when the two mostly agree."""
    correct_a, correct_b, known = (np.asarray(array, bool) for array in (correct_a, correct_b, known))

    def difference(rows):
        return mean_accuracy(correct_a, known, rows) - mean_accuracy(correct_b, known, rows)

    return _face_bootstrap(difference, len(known), resamples, seed)
