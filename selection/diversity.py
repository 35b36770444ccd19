"""The diverse slice: cover regions of the data that nobody has labelled yet.

Uncertainty alone keeps asking about the decision boundary the model already knows about; a
whole topic the labelled set never touched can look "certain" and stay wrong. The diverse
slice runs k-center greedy (Sener & Savarese, 2018): repeatedly take the candidate farthest
from everything already covered, where "covered" means the labelled set *and* the items
already placed in this batch, so the slices do not pile onto the same spot.
"""

from __future__ import annotations

import numpy as np

from selection.neighbours import nearest, sample_rows, unit_rows

__all__ = ["select_diverse"]


def _distance(similarity: np.ndarray) -> np.ndarray:
    """Euclidean distance between unit vectors from their cosine similarity."""
    return np.sqrt(np.maximum(0.0, 2.0 - 2.0 * similarity))


def select_diverse(
    embeddings: np.ndarray,
    rows: np.ndarray,
    labelled_embeddings: np.ndarray,
    taken_rows: np.ndarray,
    count: int,
    rng: np.random.Generator,
    *,
    max_candidates: int = 20_000,
    max_labelled: int = 5_000,
) -> list[tuple[int, dict]]:
    """Pick ``count`` rows by k-center greedy over L2-normalised embeddings.

    Two bounds keep this fast on a 1M x 256 pool. Candidates are a seeded uniform subsample
    of at most ``max(max_candidates, count)`` rows, which keeps every region holding a
    noticeable share of the pool while making the search independent of pool size. Coverage
    by the labelled set is measured against a seeded subsample of at most ``max_labelled``
    labelled items: a region with many labels keeps many of them in the subsample, so the
    error is confined to sparsely labelled regions, which then look slightly less covered
    than they are. Distances are computed in blocks, never as a full candidates x labelled
    matrix.

    Parameters
    ----------
    embeddings : ndarray of shape (n, d)
        Pool features.
    rows : ndarray of shape (c,) of int
        Candidate rows of ``embeddings`` (selectable and not yet in the batch).
    labelled_embeddings : ndarray of shape (m, d)
        Features of labelled items; ``m`` may be 0.
    taken_rows : ndarray of shape (t,) of int
        Rows of ``embeddings`` already placed in this batch by other slices.
    count : int
        Slots to fill; fewer rows come back only when there are fewer candidates.
    rng : numpy.random.Generator
        Seeded generator reserved for this slice.
    max_candidates, max_labelled : int
        Subsample bounds described above.

    Returns
    -------
    list of (row, reason)
        In greedy order; ``reason = {"distance": float | None, "cluster": int}`` where
        ``distance`` is the Euclidean distance between unit vectors (0 to 2) to the nearest
        covered item when picked (``None`` for a seeded first pick when nothing is covered)
        and ``cluster`` is the index of the k-center cluster the item opens.
    """
    if count <= 0 or len(rows) == 0:
        return []
    candidates = sample_rows(rows, max(max_candidates, count), rng)
    unit = unit_rows(embeddings, candidates)

    labelled_rows = sample_rows(np.arange(len(labelled_embeddings)), max_labelled, rng)
    covered = np.concatenate(
        [unit_rows(labelled_embeddings, labelled_rows), unit_rows(embeddings, taken_rows)]
    )
    if len(covered) > 0:
        gap = _distance(nearest(unit, covered)[0])
    else:
        gap = np.full(len(candidates), np.inf, dtype=np.float32)

    picked: list[tuple[int, dict]] = []
    for cluster in range(min(count, len(candidates))):
        best = int(np.argmax(gap))
        distance: float | None = float(gap[best])
        if np.isinf(gap[best]):
            best = int(rng.integers(len(candidates)))
            distance = None
        picked.append((int(candidates[best]), {"distance": distance, "cluster": cluster}))
        np.minimum(gap, _distance(unit @ unit[best]), out=gap)
        gap[best] = -1.0
    return picked
