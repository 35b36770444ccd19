"""The diverse slice: cover dense regions the labelled set misses, with typical members.

Uncertainty alone keeps asking about the decision boundary the model already knows about; a
whole topic the labelled set never touched can look "certain" and stay wrong. Plain k-center
greedy (Sener & Savarese, 2018) answers that by taking the point farthest from everything
covered, but in text pools the farthest points are outliers: odd, short or garbled texts that
teach nothing about any region. This slice therefore weighs coverage by typicality, as
TypiClust does (Hacohen et al., 2022): a candidate's score is its distance to the nearest
covered item (labelled set plus this batch) times how typical it is of its neighbourhood, so
the pick is a representative member of a dense, uncovered region. Where the caller passes
uncertainty scores the score also leans towards items the model is unsure of, the
cluster-margin idea (Citovsky et al., 2021), so a diverse pick still teaches.

The backend's embeddings weigh each n-gram by its inverse document frequency in the pool
(``backend/model/features.py``), so words every text shares count little. Distances are also
measured after removing the direction all texts share (the candidates' mean unit vector):
every bag-of-words embedding keeps some of it, and callers may pass unweighted features;
centring keeps what separates texts. Everything runs on bounded seeded samples, so
the cost does not depend on the pool size.
"""

from __future__ import annotations

import numpy as np

from selection.neighbours import nearest, sample_rows, unit_rows

__all__ = ["select_diverse", "typicality"]

# Neighbours averaged for typicality, and the reference sample they are found in.
_NEIGHBOURS = 10
_REFERENCE_ROWS = 1_000
_BLOCK_ROWS = 4_096


def _centred(unit: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Unit rows minus the shared direction, renormalised (cosines of what differs)."""
    shifted = unit - centre
    norms = np.linalg.norm(shifted, axis=1, keepdims=True)
    np.divide(shifted, norms, out=shifted, where=norms > 0)
    return shifted


def typicality(unit: np.ndarray, reference: np.ndarray, neighbours: int = _NEIGHBOURS) -> np.ndarray:
    """Mean cosine similarity of each row to its ``neighbours`` nearest reference rows.

    Parameters
    ----------
    unit : ndarray of shape (c, d)
        Unit rows to score.
    reference : ndarray of shape (r, d)
        Unit rows drawn uniformly from the same pool, ``r >= 1``; a dense region holds many of
        them, so its members find close neighbours and score high.
    neighbours : int

    Returns
    -------
    ndarray of shape (c,), float32; higher = more typical.
    """
    k = max(1, min(neighbours, len(reference)))
    out = np.empty(len(unit), dtype=np.float32)
    for start in range(0, len(unit), _BLOCK_ROWS):
        sims = unit[start : start + _BLOCK_ROWS] @ reference.T
        top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        out[start : start + len(sims)] = top.mean(axis=1)
    return out


def _percentile(values: np.ndarray) -> np.ndarray:
    """Rank of each value scaled to (0, 1]; ties share the order of a stable sort."""
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[np.argsort(values, kind="stable")] = np.arange(1, len(values) + 1)
    return ranks / len(values)


def select_diverse(
    embeddings: np.ndarray,
    rows: np.ndarray,
    labelled_embeddings: np.ndarray,
    taken_rows: np.ndarray,
    count: int,
    rng: np.random.Generator,
    *,
    scores: np.ndarray | None = None,
    max_candidates: int = 20_000,
    max_labelled: int = 5_000,
) -> list[tuple[int, dict]]:
    """Pick ``count`` rows by typicality-weighted coverage, greedily.

    Each step takes the candidate maximising ``gap * typical * lean``, where ``gap`` is the
    Euclidean distance between unit vectors (0 to 2) to the nearest covered item, ``typical``
    is the candidate's typicality percentile among the candidates (so outliers, at the bottom,
    are rarely taken however far they are), and ``lean = 0.5 + 0.5 * u`` with ``u`` the
    uncertainty percentile when ``scores`` is given (1 otherwise). The pick then counts as
    covered, so the next pick opens another region.

    Candidates are a seeded uniform subsample of at most ``max(max_candidates, count)`` rows
    and coverage is measured against a seeded subsample of at most ``max_labelled`` labelled
    items; typicality is measured against 1,000 of the candidates. A uniform subsample keeps
    every region that holds a noticeable share of the pool, so the cost is bounded without
    losing the regions that matter.

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
    scores : ndarray of shape (n,), optional
        Uncertainty of every pool row (higher = more uncertain).
    max_candidates, max_labelled : int
        Subsample bounds described above.

    Returns
    -------
    list of (row, reason)
        In greedy order; ``reason = {"distance": float | None, "typicality": float,
        "cluster": int}``: ``distance`` to the nearest covered item when picked (``None``
        when nothing was covered yet), ``typicality`` the percentile in (0, 1], and
        ``cluster`` the index of the region the pick opens.
    """
    if count <= 0 or len(rows) == 0:
        return []
    candidates = sample_rows(rows, max(max_candidates, count), rng)
    unit = unit_rows(embeddings, candidates)
    centre = unit.mean(axis=0, keepdims=True)
    unit = _centred(unit, centre)
    reference = unit[sample_rows(np.arange(len(unit)), _REFERENCE_ROWS, rng)]
    typical = _percentile(typicality(unit, reference))
    weight = typical
    if scores is not None:
        weight = typical * (0.5 + 0.5 * _percentile(np.asarray(scores)[candidates]))

    labelled_rows = sample_rows(np.arange(len(labelled_embeddings)), max_labelled, rng)
    covered = np.concatenate(
        [unit_rows(labelled_embeddings, labelled_rows), unit_rows(embeddings, taken_rows)]
    )
    if len(covered) > 0:
        gap = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * nearest(unit, _centred(covered, centre))[0]))
        known = True
    else:
        gap = np.full(len(candidates), 2.0, dtype=np.float32)
        known = False

    picked: list[tuple[int, dict]] = []
    for cluster in range(min(count, len(candidates))):
        best = int(np.argmax(gap * weight))
        picked.append(
            (
                int(candidates[best]),
                {
                    "distance": float(gap[best]) if known else None,
                    "typicality": float(typical[best]),
                    "cluster": cluster,
                },
            )
        )
        known = True
        np.minimum(gap, np.sqrt(np.maximum(0.0, 2.0 - 2.0 * (unit @ unit[best]))), out=gap)
        gap[best] = -1.0
    return picked
