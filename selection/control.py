"""The control slice: a uniform random sample that measures the model honestly.

Labels on items picked *because* the model is unsure are a biased test set. A small share of
every batch drawn uniformly from the selectable pool gives an unbiased estimate of accuracy
on the data the model will actually meet. To keep that guarantee by construction, this
module never sees probabilities or embeddings: the draw depends only on the sorted
selectable task ids, the random generator and the count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["select_control"]


def select_control(task_ids: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``count`` task ids uniformly without replacement.

    Parameters
    ----------
    task_ids : ndarray of shape (n,) of int
        Selectable task ids. They are sorted here, so the caller's row order (which may
        follow model scores) cannot leak into the draw.
    count : int
        Number to draw, ``0 <= count <= n``.
    rng : numpy.random.Generator
        Seeded generator reserved for this slice.

    Returns
    -------
    ndarray of shape (count,) of int64, in draw order.
    """
    if not 0 <= count <= len(task_ids):
        raise ValueError(f"control count must be in [0, {len(task_ids)}]; got {count}")
    ordered = np.sort(np.asarray(task_ids, dtype=np.int64))
    return rng.choice(ordered, size=count, replace=False)
