"""Measuring the loop: quality, intervals, agreement and gain as small pure functions.

Arrays in, numbers out; nothing here knows about Label Studio or cycles. Labels are
indicator matrices of shape ``(n_items, n_classes)`` (one ``True`` per row for single-label
tasks), so one code path serves single- and multi-label projects. Quality functions also
accept leading batch dimensions, ``(..., n_items, n_classes)``, which is how
:func:`bootstrap_interval` evaluates all its resamples in one vectorised call.

Undefined values (a kappa when chance agreement is 1, precision of a class never predicted)
are ``nan`` rather than 0, so a report can say "not measurable" instead of "zero".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import norm

from selection.errors import InvalidArrayError

__all__ = [
    "accuracy",
    "as_indicator",
    "bootstrap_interval",
    "class_precision_recall",
    "cohens_kappa",
    "cost_per_point",
    "fleiss_kappa",
    "gain_per_label",
    "macro_f1",
    "percent_agreement",
    "rating_counts",
    "weighted_slope",
    "wilson_interval",
]

Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


def as_indicator(label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """``[("a",), ("b", "c")]`` -> boolean matrix ``(n_items, len(labels))``; unknown labels are dropped."""
    column = {label: j for j, label in enumerate(labels)}
    matrix = np.zeros((len(label_sets), len(labels)), dtype=bool)
    for i, chosen in enumerate(label_sets):
        for label in chosen:
            if label in column:
                matrix[i, column[label]] = True
    return matrix


def _check_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    if y_true.shape != y_pred.shape or y_true.ndim < 2:
        raise InvalidArrayError(f"y_true and y_pred must be indicator matrices of one shape "
                                f"(..., n_items, n_classes); got {y_true.shape} and {y_pred.shape}")
    return y_true, y_pred


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Share of items whose predicted label set equals the true one (subset accuracy).

    Returns shape ``(...)``: a 0-d array for plain ``(n_items, n_classes)`` input; nan if empty.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    if y_true.shape[-2] == 0:
        return np.full(y_true.shape[:-2], np.nan)
    return np.all(y_true == y_pred, axis=-1).mean(axis=-1)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Unweighted mean F1 over the classes that occur in ``y_true`` or ``y_pred``.

    Classes absent from both are left out, as scikit-learn does for single-label input
    (its default ``labels``), so a tiny control sample is not punished for classes it never
    drew. nan when no class occurs at all.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    tp = np.sum(y_true & y_pred, axis=-2)
    fp = np.sum(~y_true & y_pred, axis=-2)
    fn = np.sum(y_true & ~y_pred, axis=-2)
    present = (tp + fp + fn) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        return np.sum(f1, axis=-1) / np.where(present.any(axis=-1), present.sum(axis=-1), np.nan)


def class_precision_recall(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and support (true count), each of shape ``(n_classes,)``.

    Precision is nan for a class never predicted, recall nan for a class never true.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    tp = np.sum(y_true & y_pred, axis=0).astype(float)
    predicted = np.sum(y_pred, axis=0)
    support = np.sum(y_true, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
    return precision, recall, support


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion: sound for the handful of control items a cycle
    has, where the normal approximation gives intervals outside [0, 1]. ``(nan, nan)`` if n = 0."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}; got {successes}")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At 0 or n successes the bound is exactly 0 or 1; floating point would leave ~1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def bootstrap_interval(y_true: np.ndarray, y_pred: np.ndarray, statistic: Statistic, rng: np.random.Generator,
                       *, n_resamples: int = 1000, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` (e.g. :func:`macro_f1`) over items.

    ``statistic`` must accept a leading resample dimension. The caller passes a seeded
    ``rng`` so a report can be reproduced. ``(nan, nan)`` when there are no items.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    n = y_true.shape[0]
    if n == 0:
        return (math.nan, math.nan)
    rows = rng.integers(0, n, size=(n_resamples, n))
    values = np.asarray(statistic(y_true[rows], y_pred[rows]), dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return (float(low), float(high))


def rating_counts(ratings: Sequence[Sequence[int]], n_categories: int) -> np.ndarray:
    """Per-item ratings (category indices, one per annotator) -> counts ``(n_items, n_categories)``."""
    counts = np.zeros((len(ratings), n_categories), dtype=int)
    for i, item in enumerate(ratings):
        for category in item:
            counts[i, category] += 1
    return counts


def _check_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise InvalidArrayError(f"counts must have shape (n_items, n_categories); got {counts.shape}")
    raters = counts.sum(axis=1)
    if np.any(raters < 2):
        raise InvalidArrayError("every item needs at least two ratings to measure agreement")
    return counts.astype(float), raters.astype(float)


def _item_agreement(counts: np.ndarray, raters: np.ndarray) -> np.ndarray:
    """Per item: the share of ordered annotator pairs that chose the same category."""
    return (np.sum(counts * counts, axis=1) - raters) / (raters * (raters - 1))


def percent_agreement(counts: np.ndarray) -> float:
    """Mean pairwise agreement per item; with two annotators, the share of items they agree on."""
    counts, raters = _check_counts(counts)
    return float(np.mean(_item_agreement(counts, raters))) if len(counts) else math.nan


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa; items may have different numbers of ratings (each item's agreement uses
    its own count, and category shares pool all ratings), which reduces to Fleiss (1971) when
    the count is constant. nan when there are no items or chance agreement is 1."""
    counts, raters = _check_counts(counts)
    if len(counts) == 0:
        return math.nan
    observed = float(np.mean(_item_agreement(counts, raters)))
    shares = counts.sum(axis=0) / raters.sum()
    expected = float(np.sum(shares * shares))
    return math.nan if math.isclose(expected, 1.0) else (observed - expected) / (1 - expected)


def cohens_kappa(first: Sequence[int], second: Sequence[int]) -> float:
    """Cohen's kappa of two annotators' category indices on the same items (same order).

    nan when there are no items or both annotators used one and the same category throughout.
    """
    a, b = np.asarray(first), np.asarray(second)
    if a.shape != b.shape or a.ndim != 1:
        raise InvalidArrayError(f"both annotators must rate the same items; got shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return math.nan
    categories = np.union1d(a, b)
    observed = float(np.mean(a == b))
    expected = float(sum(np.mean(a == c) * np.mean(b == c) for c in categories))
    return math.nan if math.isclose(expected, 1.0) else (observed - expected) / (1 - expected)


def gain_per_label(previous: float | None, current: float | None, labels: int) -> float | None:
    """Change in quality per label spent in between; None when either end is unmeasured or no
    label was spent (a gain without labels says nothing about labelling)."""
    if previous is None or current is None or labels <= 0 or math.isnan(previous) or math.isnan(current):
        return None
    return (current - previous) / labels


def cost_per_point(cost: float, previous: float | None, current: float | None) -> float | None:
    """Cost of one percentage point of quality; None unless quality went up (a cost per point
    of a loss or of no change is meaningless, and the report says "no gain" instead)."""
    if previous is None or current is None or math.isnan(previous) or math.isnan(current):
        return None
    points = (current - previous) * 100
    return cost / points if points > 0 else None


def weighted_slope(x: Sequence[float], y: Sequence[float], weights: Sequence[float]) -> float | None:
    """Slope of the weighted least-squares line through ``(x, y)``: the learning curve's rate.

    Weights are the items behind each ``y`` (its variance shrinks as 1/n), so a cycle with 20
    control items counts more than one with 2. None with fewer than two distinct ``x``.
    """
    x, y, w = (np.asarray(v, dtype=float) for v in (x, y, weights))
    if x.shape != y.shape or x.shape != w.shape or x.ndim != 1:
        raise InvalidArrayError(f"x, y and weights must be 1-d and of one length; got {x.shape}, {y.shape}, {w.shape}")
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    if np.unique(x).size < 2:
        return None
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    return float(np.sum(w * (x - mx) * (y - my)) / np.sum(w * (x - mx) ** 2))
