"""Does the selection embedding keep what separates the classes? (issue 12)

The diverse slice and the override neighbours measure similarity in the 256-d embedding of
``backend/model/features.py``: IDF-weighted hashed n-grams, then a sparse random projection.
A projection only helps if a text's neighbours in it are the neighbours it had before. This
script measures that with labels the embedding never sees: for every train text of a data set,
its nearest other text by cosine, and how often the two share a label (1-NN label agreement).
It compares the unprojected IDF-weighted space (the upper bound), projections of several
densities (share of non-zero entries; each hashed n-gram lands on ``256 * density`` output
dimensions on average), and the share of texts that embed to an all-zero row.

Usage (from the repository root)::

    python -m bench.embedding_neighbours                    # banking77 and hwu64_scenarios
    python -m bench.embedding_neighbours --data banking77 --densities 0.001953125 0.03125
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
from rich.progress import track
from scipy import sparse

from backend.model.features import HASH_FEATURES, PROJECTION_DENSITY, embed_texts, pool_idf, weighted_counts
from bench.data import load_dataset

#: scikit-learn's default density for 2**18 input features, 1/sqrt(2**18): the product's before.
SKLEARN_DEFAULT = 1 / np.sqrt(HASH_FEATURES)
DENSITIES = (SKLEARN_DEFAULT, 1 / 64, PROJECTION_DENSITY, 1 / 16)
BLOCK = 2000


def nearest_neighbours(vectors: np.ndarray | sparse.csr_matrix) -> np.ndarray:
    """Index of each row's most cosine-similar other row (rows are unit or zero), in blocks so
    a 10,000-text pool never needs its whole similarity matrix."""
    nearest = np.empty(vectors.shape[0], dtype=np.int64)
    for start in range(0, vectors.shape[0], BLOCK):
        block = vectors[start:start + BLOCK] @ vectors.T
        block = block.toarray() if sparse.issparse(block) else np.asarray(block)
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = -np.inf
        nearest[start:start + BLOCK] = block.argmax(axis=1)
    return nearest


def agreement(vectors: np.ndarray | sparse.csr_matrix, labels: np.ndarray) -> float:
    """Share of texts whose nearest other text has the same label."""
    return float((labels[nearest_neighbours(vectors)] == labels).mean())


def zero_rows(vectors: np.ndarray) -> float:
    return float((np.abs(vectors).sum(axis=1) == 0).mean())


def rows_for(name: str, densities: Sequence[float]) -> list[tuple[str, str, float, float, float]]:
    """(data set, space, 1-NN agreement, zero-row share, embedding µs per text) per space."""
    data = load_dataset(name)
    texts, labels = data.train.texts, data.train.labels
    idf = pool_idf(texts)
    rows = [(name, "unprojected (IDF-weighted hashed n-grams)", agreement(weighted_counts(texts, idf), labels),
             0.0, float("nan"))]
    for density in track(densities, description=name):
        embed_texts(texts[:10], idf=idf, density=density)  # builds the projection outside the timing
        started = time.perf_counter()
        vectors = embed_texts(texts, idf=idf, density=density)
        micros = (time.perf_counter() - started) / len(texts) * 1e6
        shipped = " (shipped)" if density == PROJECTION_DENSITY else ""
        label = f"projected, density 1/{1 / density:.0f}{shipped}"
        rows.append((name, label, agreement(vectors, labels), zero_rows(vectors), micros))
    return rows


def markdown(rows: list[tuple[str, str, float, float, float]]) -> str:
    lines = ["| data set | space | 1-NN label agreement | texts embedded to zero | embed µs/text |",
             "|---|---|---:|---:|---:|"]
    for name, space, agree, zero, micros in rows:
        timing = "" if np.isnan(micros) else f"{micros:.0f}"
        lines.append(f"| {name} | {space} | {agree:.3f} | {zero:.1%} | {timing} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["banking77", "hwu64_scenarios"])
    parser.add_argument("--densities", nargs="+", type=float, default=list(DENSITIES))
    args = parser.parse_args(argv)
    print(markdown([row for name in args.data for row in rows_for(name, args.densities)]))


if __name__ == "__main__":
    main()
