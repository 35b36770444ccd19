"""Dense text features for selection: IDF-weighted hashed n-grams, projected to a fixed width.

Diversity and override-similarity need a fixed feature space in which new tasks can be added
without refitting a vocabulary and in which distances stay comparable across cycles. The
model's own TF-IDF vocabulary changes at every retrain, so we use feature hashing (word 1-2
grams, sublinear counts), weight each hashed n-gram by its inverse document frequency in the
pool, then apply a seeded sparse random projection to ``EMBEDDING_DIM`` dimensions and L2
normalisation: cosine similarity of two projected texts approximates that of their IDF-weighted
hashed n-gram vectors (Johnson-Lindenstrauss), at 1 KB per task in float32.

Without IDF the words every text shares ("I", "my", "the", "how do I") dominate the cosine, so
two texts about different things look alike and the diverse slice measures phrasing instead of
topic. The IDF is a property of the pool, not of one text: :func:`document_frequencies` counts
it, :func:`idf_weights` turns counts into weights, and the caller (the pool cache) keeps one
frozen weight vector per pool so that every cached embedding shares it.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize
from sklearn.random_projection import SparseRandomProjection

EMBEDDING_DIM = 256
HASH_FEATURES = 2**18
#: Share of non-zero entries in the projection matrix: each hashed n-gram lands on about
#: ``EMBEDDING_DIM * density`` = 8 output dimensions. scikit-learn's default (1/sqrt(2**18)) gives
#: each n-gram 0.5 dimensions on average, so 61 % of them vanish from the embedding and short texts
#: ("ok", "?") embed to zero. At 1/32 none vanish, and a text's nearest pool neighbour shares its
#: label as often as in the unprojected space (banking77 0.49 -> 0.67, hwu64 0.55 -> 0.79).
PROJECTION_DENSITY = 1 / 32


@functools.lru_cache(maxsize=1)
def _hasher() -> HashingVectorizer:
    return HashingVectorizer(n_features=HASH_FEATURES, ngram_range=(1, 2), alternate_sign=False,
                             strip_accents="unicode", norm=None)


@functools.lru_cache(maxsize=4)
def _projection(seed: int, density: float) -> SparseRandomProjection:
    """Documented cache: building the projection costs ~2 s and is identical for a seed."""
    projection = SparseRandomProjection(n_components=EMBEDDING_DIM, density=density, random_state=seed,
                                        dense_output=True)
    projection.fit(np.zeros((1, HASH_FEATURES), dtype=np.float64))
    return projection


def document_frequencies(texts: Sequence[str]) -> np.ndarray:
    """Shape (HASH_FEATURES,), int64: in how many of ``texts`` each hashed n-gram occurs.

    Counts of two sets of texts add up, so a pool's counts can grow with each sync.
    """
    if not texts:
        return np.zeros(HASH_FEATURES, dtype=np.int64)
    counts = _hasher().transform(list(texts))
    return np.bincount(counts.indices, minlength=HASH_FEATURES).astype(np.int64)


def idf_weights(frequencies: np.ndarray, documents: int) -> np.ndarray:
    """Smoothed inverse document frequency, ``ln((1 + N) / (1 + df)) + 1``, float32.

    The same formula as scikit-learn's ``TfidfVectorizer(smooth_idf=True)``: an n-gram in every
    text keeps weight 1, a rare one weighs up to ``ln(1 + N) + 1``, and an n-gram never seen in
    the pool (a text added after the weights were fixed) gets the rare weight.
    """
    return (np.log((1.0 + documents) / (1.0 + np.asarray(frequencies, dtype=np.float64))) + 1.0).astype(
        np.float32)


def pool_idf(texts: Sequence[str]) -> np.ndarray:
    """:func:`idf_weights` of ``texts`` themselves: the weights for a pool embedded at once."""
    return idf_weights(document_frequencies(texts), len(texts))


def weighted_counts(texts: Sequence[str], idf: np.ndarray | None = None) -> sparse.csr_matrix:
    """The space the embedding approximates: sublinear hashed n-gram counts, weighted by ``idf``
    (``None``: unweighted), unit rows; shape (len(texts), HASH_FEATURES)."""
    counts = _hasher().transform(list(texts))
    counts.data = 1.0 + np.log(counts.data)
    if idf is not None:
        counts.data *= idf[counts.indices]
    return normalize(counts)


def embed_texts(texts: Sequence[str], seed: int = 0, idf: np.ndarray | None = None,
                density: float = PROJECTION_DENSITY) -> np.ndarray:
    """Shape (len(texts), EMBEDDING_DIM), float32, unit rows (zero rows for empty texts).

    ``idf`` (shape (HASH_FEATURES,), from :func:`idf_weights`) weights each hashed n-gram;
    ``None`` leaves them unweighted. Texts compared with each other must share one ``idf``.
    ``density`` is the product's; ``bench/embedding_neighbours.py`` compares others.
    """
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return normalize(_projection(seed, density).transform(weighted_counts(texts, idf))).astype(np.float32)
