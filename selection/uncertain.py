"""The uncertain slice: informative items without the failure modes of plain top-k.

Taking the k most uncertain items has two known problems. The most ambiguous items are the
ones annotators disagree on, so the extreme top-k buys the noisiest labels; and a pool often
holds many near-copies of one confusing text, so top-k spends many labels on one lesson.
This module takes a *band* of the most uncertain items (``band_factor * k`` of them), samples
from the band with probability proportional to uncertainty, and skips any candidate that is
a near duplicate of an item it already took.
"""

from __future__ import annotations

import math

import numpy as np

from selection.neighbours import unit_rows

__all__ = ["band_edge", "band_size", "select_uncertain"]


def _ranking(scores: np.ndarray, rows: np.ndarray, top: int) -> np.ndarray:
    """Positions of the ``top`` highest scores, best first (ties broken by row)."""
    best = np.argpartition(-scores, top - 1)[:top] if top < len(scores) else np.arange(len(scores))
    return best[np.lexsort((rows[best], -scores[best]))]


def band_size(count: int, band_factor: float, candidates: int) -> int:
    """Candidates in the band for ``count`` slots: ``max(count, ceil(band_factor * count))``,
    at most all ``candidates``."""
    return min(candidates, max(count, math.ceil(band_factor * count)))


def band_edge(scores: np.ndarray, count: int, band_factor: float) -> float:
    """The lowest uncertainty inside the band for ``count`` slots: what "unsure" means for the
    pool now, whatever the number of classes or how calibrated the model is (at least the
    top score when ``count`` is 0)."""
    size = max(1, band_size(count, band_factor, len(scores)))
    return float(np.partition(scores, len(scores) - size)[len(scores) - size])


def select_uncertain(
    scores: np.ndarray,
    rows: np.ndarray,
    embeddings: np.ndarray,
    count: int,
    rng: np.random.Generator,
    *,
    band_factor: float = 3.0,
    max_similarity: float = 0.95,
) -> list[tuple[int, dict]]:
    """Pick up to ``count`` uncertain rows from a band, skipping near duplicates.

    The band is the ``max(count, ceil(band_factor * count))`` highest-scoring candidates:
    still informative, but wide enough that the most contested items are not all taken.
    Within the band, items are visited in a seeded weighted random order (weight =
    uncertainty, without replacement) and a visited item is skipped when its cosine
    similarity to an item already taken exceeds ``max_similarity``, since a second copy of a
    text teaches the model nothing new. If duplicates leave the band short, the next
    segment of the ranking (twice as deep each time) is visited the same way, so fewer than
    ``count`` rows come back only when the candidates themselves run out of non-duplicates.

    Parameters
    ----------
    scores : ndarray of shape (c,)
        Uncertainty of each candidate, in [0, 1], higher = more uncertain.
    rows : ndarray of shape (c,) of int
        Candidate row indices into ``embeddings``.
    embeddings : ndarray of shape (n, d)
        Pool features; only visited rows are read.
    count : int
        Slots to fill.
    rng : numpy.random.Generator
        Seeded generator reserved for this slice.
    band_factor : float
        Band width as a multiple of ``count``; must be >= 1 (1 means plain top-k order).
    max_similarity : float
        Cosine similarity above which a candidate counts as a duplicate.

    Returns
    -------
    list of (row, reason)
        In pick order; ``reason = {"uncertainty": float, "band_rank": int}`` where band rank 1
        is the most uncertain candidate.
    """
    if band_factor < 1.0:
        raise ValueError(f"band_factor must be >= 1 (1 = plain top-k); got {band_factor}")
    picked: list[tuple[int, dict]] = []
    taken: list[np.ndarray] = []
    start, stop = 0, band_size(count, band_factor, len(rows))
    while len(picked) < count and start < stop:
        segment = _ranking(scores, rows, stop)[start:]
        unit = unit_rows(embeddings, rows[segment])
        closest = (
            (unit @ np.stack(taken).T).max(axis=1)
            if taken
            else np.full(len(segment), -np.inf, dtype=np.float32)
        )
        weights = np.maximum(scores[segment], 1e-12)
        for position in np.argsort(rng.exponential(size=len(segment)) / weights, kind="stable"):
            if closest[position] > max_similarity:
                continue
            candidate = segment[position]
            picked.append(
                (
                    int(rows[candidate]),
                    {
                        "uncertainty": float(scores[candidate]),
                        "band_rank": start + int(position) + 1,
                    },
                )
            )
            if len(picked) == count:
                break
            taken.append(unit[position])
            np.maximum(closest, unit @ unit[position], out=closest)
        start, stop = stop, min(len(rows), 2 * stop)
    return picked
