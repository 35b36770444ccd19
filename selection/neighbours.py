"""Cosine nearest-neighbour helpers shared by the diverse, failure and uncertain slices.

Pools reach a million rows, so nothing here builds an ``n x m`` similarity matrix: queries
are processed in blocks whose similarity block stays around 32 MB, and callers pick the
rows they need (a seeded subsample) before normalising, instead of copying the whole pool.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nearest", "sample_rows", "unit_rows"]

# Similarity entries per block (float32): 8M entries = 32 MB of scratch per matrix product.
_BLOCK_ENTRIES = 1 << 23


def unit_rows(embeddings: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """L2-normalised float32 copy of the selected rows, so dot products are cosines.

    Parameters
    ----------
    embeddings : ndarray of shape (n, d)
    rows : ndarray of shape (r,) of int, optional
        Row indices to take; all rows when omitted.

    Returns
    -------
    ndarray of shape (r, d), float32. All-zero rows stay zero (cosine 0 to everything)
    rather than becoming NaN.
    """
    picked = embeddings if rows is None else embeddings[rows]
    unit = np.array(picked, dtype=np.float32, copy=True)
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    np.divide(unit, norms, out=unit, where=norms > 0)
    return unit


def nearest(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Highest cosine similarity from each query to any reference, block by block.

    Parameters
    ----------
    queries : ndarray of shape (q, d)
        Unit-norm rows (see :func:`unit_rows`).
    references : ndarray of shape (r, d)
        Unit-norm rows, ``r >= 1``.

    Returns
    -------
    similarity : ndarray of shape (q,), float32
        Best cosine similarity of each query.
    index : ndarray of shape (q,), int64
        Row of ``references`` that achieves it.
    """
    similarity = np.empty(len(queries), dtype=np.float32)
    index = np.empty(len(queries), dtype=np.int64)
    block = max(1, _BLOCK_ENTRIES // max(1, len(references)))
    for start in range(0, len(queries), block):
        sims = queries[start : start + block] @ references.T
        best = sims.argmax(axis=1)
        index[start : start + len(sims)] = best
        similarity[start : start + len(sims)] = sims[np.arange(len(sims)), best]
    return similarity, index


def sample_rows(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Keep at most ``limit`` of ``rows``, chosen uniformly at random, in their input order.

    The pre-filter that keeps the diverse and failure slices fast on large pools: a uniform
    subsample preserves the pool's density, so the greedy searches still see every region
    that holds a noticeable share of the data.

    Parameters
    ----------
    rows : ndarray of shape (n,) of int
    limit : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (min(n, limit),) of int
    """
    if len(rows) <= limit:
        return rows
    keep = np.sort(rng.choice(len(rows), size=limit, replace=False))
    return rows[keep]
