"""The failure slice: go back to where the model is known to be wrong.

Two signals point at real mistakes. Production flags name tasks the model got wrong in use;
overrides are labelled tasks where the annotator disagreed with the model's prediction.
Flagged tasks still in the pool come first, as they are failures for certain; then the
unlabelled items most similar to overridden ones, because a mistake usually has neighbours
the model gets wrong for the same reason.

An override neighbour only teaches if the *current* model still does not know it: after the
retrain that learned the overridden item, its near-copies are usually right. So a neighbour
counts only where the model is as unsure of it as of the items the uncertain slice draws from
(its uncertainty at or above the edge of that slice's band, which ``compose_batch`` passes as
``unsure``), and neighbours that are near duplicates of one already ranked are skipped. A fixed
threshold does not say "unsure" at every stage: with many classes a softmax stays flat, and
late in a banking77 run neighbours kept at uncertainty >= 0.5 were wrong 17-21 % of the time
(random picks 13-18 %, the uncertain slice 56-67 %); at the band's edge, 54-63 %. Nor does "the
model predicts another class than the corrected label": a neighbour of another class is
predicted right, and such neighbours were wrong 4 % of the time.

An override is only worth following where the retrained model has taken it on: where the
model, trained on the corrected label, still predicts another class for the overridden item
itself, the label more likely is an annotator's slip (its neighbours outvote it) than a mistake
with neighbours worth chasing (:func:`accepted_overrides`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selection.neighbours import nearest, sample_rows, unit_rows

__all__ = ["accepted_overrides", "failure_candidates", "nominal_failure_count"]

# Candidate rows normalised at once while scanning for override neighbours (16 MB at d=256).
_SCAN_ROWS = 16_384


def _flagged_rows(flagged: Sequence[int], ids: np.ndarray, rows: np.ndarray) -> list[int]:
    """Rows of the flagged task ids that are selectable, deduplicated, in flag order."""
    found: list[int] = []
    for task_id in dict.fromkeys(int(task_id) for task_id in flagged):
        position = int(np.searchsorted(ids, task_id))
        if position < len(ids) and ids[position] == task_id:
            found.append(int(rows[position]))
    return found


def accepted_overrides(
    overridden: np.ndarray, labelled_labels: np.ndarray | None, labelled_proba: np.ndarray | None
) -> np.ndarray:
    """``overridden`` without the overrides the current model rejects on the item itself: a
    known label (``>= 0``) that is not the model's top class there. Without labels or
    probabilities nothing says an override is a slip, and every one is kept."""
    if labelled_labels is None or labelled_proba is None or not np.any(overridden):
        return overridden
    labels = np.asarray(labelled_labels)
    rejected = (labels >= 0) & (np.asarray(labelled_proba).argmax(axis=1) != labels)
    return overridden & ~rejected


def nominal_failure_count(
    ids: np.ndarray, rows: np.ndarray, flagged: Sequence[int], overridden: np.ndarray, limit: int
) -> int:
    """Failure slots a batch plans for: selectable flagged tasks, plus ``limit`` if any override.

    Depends only on ids and flags, never on embeddings or model scores, so the slot counts
    (and hence the control slice) cannot be moved by the model; slots the filtered ranking
    cannot fill are handed to the uncertain and diverse slices.
    """
    found = len(_flagged_rows(flagged, ids, rows))
    return min(limit, found + (limit if np.any(overridden) else 0))


def failure_candidates(
    ids: np.ndarray,
    rows: np.ndarray,
    embeddings: np.ndarray,
    flagged: Sequence[int],
    labelled_ids: np.ndarray,
    labelled_embeddings: np.ndarray,
    overridden: np.ndarray,
    limit: int,
    rng: np.random.Generator,
    *,
    max_candidates: int = 100_000,
    max_overrides: int = 256,
    scores: np.ndarray | None = None,
    unsure: float = 0.5,
    max_similarity: float = 0.95,
) -> list[tuple[int, dict]]:
    """Rank up to ``limit`` failure candidates: flagged tasks, then override neighbours.

    Override neighbours are ranked by their highest cosine similarity to any overridden
    labelled item. How many candidates come back depends only on ``limit``, the flagged ids
    and whether any override exists, never on embedding values, so the slot counts (and
    hence the control slice) cannot be moved by the model. On large inputs the scan covers
    a seeded uniform subsample of at most ``max_candidates`` pool rows against at most
    ``max_overrides`` overridden items, in blocks, so cost and memory stay bounded.

    Parameters
    ----------
    ids : ndarray of shape (s,) of int64
        Selectable task ids, sorted ascending.
    rows : ndarray of shape (s,) of int
        Row of ``embeddings`` holding each id in ``ids``.
    embeddings : ndarray of shape (n, d)
        Pool features.
    flagged : sequence of int
        Task ids flagged as production failures; ids not selectable are ignored.
    labelled_ids : ndarray of shape (m,)
    labelled_embeddings : ndarray of shape (m, d)
    overridden : ndarray of shape (m,) of bool
        True where the annotator's label disagreed with the model.
    limit : int
        Longest ranking worth returning (the batch size).
    rng : numpy.random.Generator
        Seeded generator reserved for this slice.
    max_candidates, max_overrides : int
        Subsample bounds described above.
    scores : ndarray of shape (n,), optional
        Current uncertainty of every pool row in [0, 1]; a neighbour scoring at least
        ``unsure`` counts as one the model is unsure of.
    unsure : float
        Uncertainty at or above which a neighbour counts as one the model is unsure of
        (``compose_batch`` passes the edge of the uncertain slice's band).
    max_similarity : float
        Cosine similarity above which a neighbour duplicates one already ranked.

    When ``scores`` is given, override neighbours are kept only where the current model is
    unsure of them, and near duplicates are dropped; the ranking may then be shorter than
    ``limit``. Without it every neighbour counts (the ranking depends on similarity alone).

    Returns
    -------
    list of (row, reason)
        Best first. ``reason`` is ``{"source": "flagged"}`` or ``{"source": "override",
        "nearest_labelled": task id, "similarity": float}``.
    """
    ranked: list[tuple[int, dict]] = [
        (row, {"source": "flagged"}) for row in _flagged_rows(flagged, ids, rows)[:limit]
    ]
    override_rows = np.flatnonzero(overridden)
    if len(ranked) >= limit or len(override_rows) == 0:
        return ranked

    override_rows = sample_rows(override_rows, max_overrides, rng)
    references = unit_rows(labelled_embeddings, override_rows)
    candidates = rows[~np.isin(rows, [row for row, _ in ranked])]
    candidates = sample_rows(candidates, max_candidates, rng)
    similarity = np.empty(len(candidates), dtype=np.float32)
    closest = np.empty(len(candidates), dtype=np.int64)
    for start in range(0, len(candidates), _SCAN_ROWS):
        block = unit_rows(embeddings, candidates[start : start + _SCAN_ROWS])
        similarity[start : start + len(block)], closest[start : start + len(block)] = nearest(
            block, references
        )

    wanted = min(limit - len(ranked), len(candidates))
    if wanted == 0:
        return ranked
    filtering = scores is not None
    if filtering:
        keep = np.flatnonzero(np.asarray(scores)[candidates] >= unsure)
        top = keep[np.lexsort((candidates[keep], -similarity[keep]))]
    else:
        top = np.argpartition(-similarity, wanted - 1)[:wanted]
        top = top[np.lexsort((candidates[top], -similarity[top]))]
    kept: list[np.ndarray] = []
    for position in top:
        if len(ranked) >= limit:
            break
        if filtering:
            vector = unit_rows(embeddings, candidates[position : position + 1])[0]
            if kept and float(np.max(np.stack(kept) @ vector)) > max_similarity:
                continue
            kept.append(vector)
        ranked.append(
            (
                int(candidates[position]),
                {
                    "source": "override",
                    "nearest_labelled": int(labelled_ids[override_rows[closest[position]]]),
                    "similarity": float(similarity[position]),
                },
            )
        )
    return ranked
