"""Simulated annotators: a perfect oracle and a noisy one who errs where items are ambiguous.

The noisy annotator models the brief's warning that the most ambiguous items buy the noisiest
labels. Ambiguity comes from a *reference model* (the product's default estimator) scored
out-of-fold on the whole pool, so it reflects how confusable an item genuinely is, not how
well the reference memorised it: the less probability the reference gives the true label, the
more likely the annotator picks another label, and that label is drawn in proportion to the
reference's probabilities over the other classes (the confusable intent is the likely slip).

Every annotator answer is drawn once per benchmark seed for every pool item, before any
strategy runs. Strategies that pick the same item therefore get the same answer (common random
numbers), so differences between strategies are differences in *which* items they ask about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from backend.model.classifier import fit_model

ANNOTATORS: tuple[str, ...] = ("oracle", "noisy")


@dataclass(frozen=True)
class Ambiguity:
    """How confusable each pool item is, from out-of-fold reference probabilities.

    Attributes
    ----------
    true_proba : ndarray of shape (n,)
        Reference probability of the item's true label; low means ambiguous.
    confusion : ndarray of shape (n, k)
        Reference probabilities with the true label's column zeroed and rows renormalised
        (uniform over other labels where the reference put all mass on the truth).
    """

    true_proba: np.ndarray
    confusion: np.ndarray


def fold_splits(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified ``(train_rows, held_out_rows)`` pairs covering every item once."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def fold_proba(texts: Sequence[str], labels: np.ndarray, categories: tuple[str, ...],
               train_rows: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Probabilities for ``held_out`` rows from a default-estimator model fitted on ``train_rows``."""
    model = fit_model([texts[i] for i in train_rows], [(categories[y],) for y in labels[train_rows]],
                      labels=categories, multilabel=False, version="reference")
    return model.predict_proba([texts[i] for i in held_out])


def ambiguity_from_proba(proba: np.ndarray, labels: np.ndarray) -> Ambiguity:
    """Turn out-of-fold probabilities of shape (n, k) into :class:`Ambiguity`."""
    rows = np.arange(len(labels))
    true_proba = proba[rows, labels].copy()
    confusion = proba.copy()
    confusion[rows, labels] = 0.0
    empty = confusion.sum(axis=1) <= 0.0
    confusion[empty] = 1.0
    confusion[rows[empty], labels[empty]] = 0.0
    confusion /= confusion.sum(axis=1, keepdims=True)
    return Ambiguity(true_proba=true_proba, confusion=confusion)


def reference_ambiguity(texts: Sequence[str], labels: np.ndarray, categories: tuple[str, ...],
                        *, folds: int = 5, seed: int = 0) -> Ambiguity:
    """Score every item with a default-estimator model that never saw it (k-fold), serially.

    ``bench/label_efficiency.py`` runs the same folds in parallel with :func:`fold_splits`,
    :func:`fold_proba` and :func:`ambiguity_from_proba`.
    """
    proba = np.zeros((len(texts), len(categories)))
    for train_rows, held_out in fold_splits(labels, folds, seed):
        proba[held_out] = fold_proba(texts, labels, categories, train_rows, held_out)
    return ambiguity_from_proba(proba, labels)


def error_probability(ambiguity: Ambiguity, mean_noise: float) -> np.ndarray:
    """Per-item error probability ``min(1, scale * (1 - true_proba))``.

    ``scale`` is chosen so the pool-average error probability equals ``mean_noise``: a
    uniformly random batch is mislabelled at that rate, an ambiguous batch at a higher one.
    """
    ambiguity_score = 1.0 - ambiguity.true_proba
    if mean_noise <= 0.0 or ambiguity_score.mean() <= 0.0:
        return np.zeros_like(ambiguity_score)
    scale = mean_noise / ambiguity_score.mean()
    return np.clip(scale * ambiguity_score, 0.0, 1.0)


def annotator_answers(truth: np.ndarray, kind: str, rng: np.random.Generator, *,
                      ambiguity: Ambiguity | None = None, mean_noise: float = 0.1) -> np.ndarray:
    """The label the annotator ``kind`` gives each pool item, drawn once for a whole run.

    Parameters
    ----------
    truth : ndarray of shape (n,) of int
    kind : {"oracle", "noisy"}
    rng : numpy.random.Generator
        Seeded generator for this benchmark seed.
    ambiguity : Ambiguity
        Required for ``"noisy"``.
    mean_noise : float
        Pool-average error rate of the noisy annotator.

    Returns
    -------
    ndarray of shape (n,) of int
    """
    if kind == "oracle":
        return truth.copy()
    if kind != "noisy":
        raise ValueError(f"unknown annotator {kind!r}; choose one of {ANNOTATORS}")
    if ambiguity is None:
        raise ValueError("the noisy annotator needs reference ambiguity scores")
    errs = rng.random(len(truth)) < error_probability(ambiguity, mean_noise)
    cumulative = np.cumsum(ambiguity.confusion, axis=1)
    draws = rng.random(len(truth))[:, None] * cumulative[:, -1:]
    slips = np.minimum((cumulative < draws).sum(axis=1), ambiguity.confusion.shape[1] - 1)
    return np.where(errs, slips, truth)
