"""Dense text features for selection: stateless, so the pool can be embedded incrementally.

Diversity and override-similarity need a fixed feature space in which new tasks can be added
without refitting anything and in which distances stay comparable across cycles. The model's
own TF-IDF vocabulary changes at every retrain, so we use feature hashing (word 1-2 grams,
sublinear counts) followed by a seeded sparse random projection to ``EMBEDDING_DIM`` dimensions
and L2 normalisation: cosine similarity of two projected texts approximates that of their
hashed n-gram vectors (Johnson-Lindenstrauss), at 1 KB per task in float32.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize
from sklearn.random_projection import SparseRandomProjection

EMBEDDING_DIM = 256
HASH_FEATURES = 2**18


@functools.lru_cache(maxsize=4)
def _embedder(seed: int) -> tuple[HashingVectorizer, SparseRandomProjection]:
    """Documented cache: building the projection costs ~0.1 s and is identical for a seed."""
    hasher = HashingVectorizer(n_features=HASH_FEATURES, ngram_range=(1, 2), alternate_sign=False,
                               strip_accents="unicode", norm=None)
    projection = SparseRandomProjection(n_components=EMBEDDING_DIM, random_state=seed, dense_output=True)
    projection.fit(np.zeros((1, HASH_FEATURES), dtype=np.float64))
    return hasher, projection


def embed_texts(texts: Sequence[str], seed: int = 0) -> np.ndarray:
    """Shape (len(texts), EMBEDDING_DIM), float32, unit rows (zero rows for empty texts)."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    hasher, projection = _embedder(seed)
    counts = hasher.transform(list(texts))
    counts.data = 1.0 + np.log(counts.data)
    return normalize(projection.transform(normalize(counts))).astype(np.float32)
