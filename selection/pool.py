"""What selection works on: the unlabelled pool and the labelled set, checked up front.

Both are frozen dataclasses of plain numpy arrays, validated when built so a shape mistake
in the backend fails at the boundary with a message naming the array, not deep inside a
matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from selection.errors import InvalidArrayError

__all__ = ["LabelledSet", "Pool", "selectable_rows"]


def _check(name: str, array: np.ndarray, ndim: int, rows: int | None = None) -> None:
    """Raise :class:`InvalidArrayError` unless ``array`` has ``ndim`` dims and ``rows`` rows."""
    if array.ndim != ndim:
        raise InvalidArrayError(f"{name} must be {ndim}-D; got shape {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise InvalidArrayError(
            f"{name} has {array.shape[0]} rows but task_ids has {rows}; they must match"
        )


def _task_ids(name: str, values: object) -> np.ndarray:
    """Task ids as a 1-D int64 array, rejecting non-integer input such as floats."""
    array = np.asarray(values)
    _check(name, array, 1)
    if array.size and array.dtype.kind not in "iu":
        raise InvalidArrayError(f"{name} must hold integers; got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class Pool:
    """Unlabelled candidates scored by the current model.

    Attributes
    ----------
    task_ids : ndarray of shape (n,) of int64
    proba : ndarray of shape (n, k)
        Class probabilities, or independent per-label probabilities when ``multilabel``.
    embeddings : ndarray of shape (n, d)
        Dense features (the backend's are hashed n-gram projections, ``backend/model/features.py``); float32 keeps a 1M x 256 pool at 1 GB.
    multilabel : bool
    """

    task_ids: np.ndarray
    proba: np.ndarray
    embeddings: np.ndarray
    multilabel: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_ids", _task_ids("pool.task_ids", self.task_ids))
        object.__setattr__(self, "proba", np.asarray(self.proba))
        object.__setattr__(self, "embeddings", np.asarray(self.embeddings))
        n = len(self.task_ids)
        _check("pool.proba", self.proba, 2, n)
        _check("pool.embeddings", self.embeddings, 2, n)
        if self.proba.shape[1] == 0:
            raise InvalidArrayError("pool.proba has no columns; it needs one per class")


@dataclass(frozen=True, eq=False)
class LabelledSet:
    """Items annotators have already labelled.

    Attributes
    ----------
    task_ids : ndarray of shape (m,) of int64
    embeddings : ndarray of shape (m, d)
        Same feature space as the pool; use ``np.empty((0, d))`` when nothing is labelled.
    overridden : ndarray of shape (m,) of bool
        True where the annotator's label disagreed with the model's prediction.
    labels : ndarray of shape (m,) of int, optional
        Column of ``Pool.proba`` the annotator chose for each item (-1 if unknown or
        multi-label); read with ``proba`` (below).
    proba : ndarray of shape (m, k), optional
        The current model's class probabilities on the labelled items (only the overridden
        rows are read). With ``labels``, an override whose item the retrained model still
        puts in another class is taken for an annotator's slip and its neighbours are not
        chased.
    """

    task_ids: np.ndarray
    embeddings: np.ndarray
    overridden: np.ndarray
    labels: np.ndarray | None = None
    proba: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_ids", _task_ids("labelled.task_ids", self.task_ids))
        object.__setattr__(self, "embeddings", np.asarray(self.embeddings))
        object.__setattr__(self, "overridden", np.asarray(self.overridden, dtype=bool))
        m = len(self.task_ids)
        _check("labelled.embeddings", self.embeddings, 2, m)
        _check("labelled.overridden", self.overridden, 1, m)
        if self.labels is not None:
            object.__setattr__(self, "labels", _task_ids("labelled.labels", self.labels))
            _check("labelled.labels", self.labels, 1, m)
        if self.proba is not None:
            object.__setattr__(self, "proba", np.asarray(self.proba))
            _check("labelled.proba", self.proba, 2, m)


def selectable_rows(pool: Pool, labelled: LabelledSet, exclude: Sequence[int]) -> np.ndarray:
    """Rows of the pool that may enter a batch, ordered by ascending task id.

    A row is selectable when its task is neither labelled nor in ``exclude``. Ordering by
    task id (not by row) makes every later random draw independent of how the caller
    happened to order the pool.

    Parameters
    ----------
    pool : Pool
    labelled : LabelledSet
        Must share the pool's embedding width.
    exclude : sequence of int
        Task ids already queued or otherwise off-limits.

    Returns
    -------
    ndarray of shape (s,) of int64
    """
    if pool.embeddings.shape[1] != labelled.embeddings.shape[1]:
        raise InvalidArrayError(
            f"labelled.embeddings has width {labelled.embeddings.shape[1]} but "
            f"pool.embeddings has width {pool.embeddings.shape[1]}; use the same features"
        )
    blocked = np.concatenate([labelled.task_ids, _task_ids("exclude", exclude)])
    rows = np.flatnonzero(~np.isin(pool.task_ids, blocked))
    return rows[np.argsort(pool.task_ids[rows], kind="stable")]
