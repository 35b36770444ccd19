"""Uncertainty measures: how unsure the current model is about each pool item.

Each measure is a small pure function ``(n_samples, n_classes) -> (n_samples,)`` in the
modAL style, scaled to ``[0, 1]`` with higher meaning more uncertain, so measures can be
swapped without retuning anything downstream. Rows are renormalised before scoring because
calibrated or averaged models often return rows that sum to ``1 +- 1e-7`` (or worse), and a
row of zeros is read as "no idea" (uniform).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from selection.errors import InvalidArrayError, UnknownMeasureError

__all__ = ["MEASURES", "entropy", "least_confidence", "margin", "uncertainty_scores"]

# Rows scored at once by `uncertainty_scores`: bounds temporary memory to a few tens of MB
# for a 1M-row pool instead of several copies of the whole probability matrix.
_CHUNK_ROWS = 65_536


def _as_distribution(proba: np.ndarray) -> np.ndarray:
    """Return ``proba`` as float64 rows that are non-negative and sum to exactly 1.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise InvalidArrayError(
            f"proba must be 2-D (n_samples, n_classes); got shape {proba.shape}"
        )
    if not np.isfinite(proba).all():
        raise ValueError("proba contains NaN or infinite values; fix the model's output")
    proba = np.clip(proba, 0.0, None)
    totals = proba.sum(axis=1, keepdims=True)
    empty = totals[:, 0] == 0.0
    if empty.any():
        proba = proba.copy()
        proba[empty] = 1.0
        totals[empty] = proba.shape[1]
    return proba / totals


def margin(proba: np.ndarray) -> np.ndarray:
    """Margin uncertainty ``1 - (p_top1 - p_top2)``.

    Looks only at the two classes the model hesitates between, which is what an annotator
    resolves; robust when ``n_classes`` is large and most classes are irrelevant.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples,), values in [0, 1]; zeros when ``n_classes == 1``.
    """
    proba = _as_distribution(proba)
    n_classes = proba.shape[1]
    if n_classes < 2:
        return np.zeros(proba.shape[0])
    top2 = np.partition(proba, n_classes - 2, axis=1)[:, -2:]
    return np.clip(1.0 - (top2[:, 1] - top2[:, 0]), 0.0, 1.0)


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy divided by ``log(n_classes)``.

    Uses the whole distribution, so it prefers items the model finds confusing across many
    classes; the normalisation makes values comparable between label configs.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples,), values in [0, 1]; zeros when ``n_classes == 1``.
    """
    proba = _as_distribution(proba)
    n_classes = proba.shape[1]
    if n_classes < 2:
        return np.zeros(proba.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(proba > 0.0, proba * np.log(proba), 0.0)
    return np.clip(-terms.sum(axis=1) / np.log(n_classes), 0.0, 1.0)


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """Least confidence ``(1 - p_max) * n_classes / (n_classes - 1)``.

    The rescaling maps the uniform distribution to 1, so the range is [0, 1] for any
    number of classes.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples,), values in [0, 1]; zeros when ``n_classes == 1``.
    """
    proba = _as_distribution(proba)
    n_classes = proba.shape[1]
    if n_classes < 2:
        return np.zeros(proba.shape[0])
    scale = n_classes / (n_classes - 1)
    return np.clip((1.0 - proba.max(axis=1)) * scale, 0.0, 1.0)


MEASURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "margin": margin,
    "entropy": entropy,
    "least_confidence": least_confidence,
}


def _multilabel_scores(
    proba: np.ndarray, measure: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Average ``measure`` over labels, each read as the binary problem ``[p_j, 1 - p_j]``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_labels)
        Independent per-label probabilities.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    p = np.clip(proba, 0.0, 1.0).reshape(-1)
    per_label = measure(np.stack([p, 1.0 - p], axis=1))
    return per_label.reshape(proba.shape).mean(axis=1)


def uncertainty_scores(
    proba: np.ndarray, measure: str = "margin", multilabel: bool = False
) -> np.ndarray:
    """Score every pool item with the named measure, in bounded memory.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Class probabilities, or independent per-label probabilities when ``multilabel``.
    measure : {"margin", "entropy", "least_confidence"}
    multilabel : bool
        Treat each column as its own binary problem and average the per-label scores, so an
        item is uncertain when the model hesitates on any of its labels.

    Returns
    -------
    ndarray of shape (n_samples,), float64 in [0, 1]; higher means more uncertain.

    Raises
    ------
    UnknownMeasureError
        If ``measure`` is not a key of :data:`MEASURES`.
    InvalidArrayError
        If ``proba`` is not 2-D.
    """
    if measure not in MEASURES:
        raise UnknownMeasureError(
            f"unknown uncertainty measure {measure!r}; choose one of {sorted(MEASURES)}"
        )
    proba = np.asarray(proba)
    if proba.ndim != 2:
        raise InvalidArrayError(
            f"proba must be 2-D (n_samples, n_classes); got shape {proba.shape}"
        )
    score = MEASURES[measure]
    scores = np.empty(proba.shape[0], dtype=np.float64)
    for start in range(0, proba.shape[0], _CHUNK_ROWS):
        chunk = proba[start : start + _CHUNK_ROWS]
        scores[start : start + len(chunk)] = (
            _multilabel_scores(np.asarray(chunk, dtype=np.float64), score)
            if multilabel
            else score(chunk)
        )
    return scores
