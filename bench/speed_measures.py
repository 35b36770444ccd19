"""The speed benchmark's measurements that need no HTTP server: retrain and selection.

Retrain is the product's retrain minus Label Studio I/O: ``fit_model`` on n banking77 rows,
then ``ModelStore.save`` (pickle, fsync, atomic rename). Selection is ``compose_batch`` on a
synthetic pool of the requested size, with the same array shapes the backend builds (256-d
float32 embeddings, float64 probabilities over 77 classes). Peak memory is the peak of
Python/numpy allocations above the level at the start of one separate, untimed call, via
``tracemalloc`` (numpy reports its buffers to it); the pool arrays themselves are listed apart.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from backend.model.classifier import fit_model
from backend.model.features import embed_texts
from backend.store import ModelStore
from bench.data import Split
from bench.official_example import example_pipeline
from selection.batch import LabelledSet, Pool, compose_batch
from selection.uncertainty import uncertainty_scores

MIB = 1024 * 1024


def retrain_times(train: Split, categories: tuple[str, ...], sizes: list[int], repeats: int,
                  seed: int = 0) -> list[dict]:
    """Seconds to fit and to save our model, and to fit the example's, per labelled-set size."""
    order = np.random.default_rng(seed).permutation(len(train))
    rows = []
    for size in sizes:
        part = train.subset(order[:min(size, len(train))])
        targets = [(categories[y],) for y in part.labels]
        fits, saves = [], []
        for repeat in range(repeats):
            started = time.perf_counter()
            model = fit_model(part.texts, targets, labels=categories, multilabel=False,
                              version=f"v{repeat + 1}")
            fits.append(time.perf_counter() - started)
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                ModelStore(Path(tmp), key=os.urandom(32)).save(1, model, {"number": repeat + 1, "n_examples": size})
                saves.append(time.perf_counter() - started)
        started = time.perf_counter()
        example_pipeline().fit(part.texts, part.labels)
        example = time.perf_counter() - started
        rows.append({"labels": len(part), "fit_median": statistics.median(fits),
                     "fit_runs": fits, "save_median": statistics.median(saves),
                     "example_fit": example})
    return rows


def synthetic_pool(size: int, labelled: int, rng: np.random.Generator, *, dim: int = 256,
                   classes: int = 77) -> tuple[Pool, LabelledSet, list[int]]:
    """A clustered pool with Dirichlet probabilities, a labelled set (15 % overridden), flags."""
    centres = rng.standard_normal((64, dim)).astype(np.float32)
    points = centres[rng.integers(64, size=size + labelled)]
    points += 0.6 * rng.standard_normal(points.shape, dtype=np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    proba = rng.dirichlet(np.full(classes, 0.3), size=size)
    pool = Pool(np.arange(1, size + 1), proba, points[:size])
    done = LabelledSet(np.arange(size + 1, size + labelled + 1), points[size:],
                       rng.random(labelled) < 0.15)
    return pool, done, rng.choice(np.arange(1, size + 1), 50, replace=False).tolist()


def selection_costs(pools: list[int], batch: int, repeats: int, seed: int = 0) -> list[dict]:
    """Median seconds and peak extra memory of ``compose_batch`` per pool size."""
    rows = []
    for size in pools:
        rng = np.random.default_rng([seed, size])
        labelled = min(5_000, size // 10)
        pool, done, flagged = synthetic_pool(size, labelled, rng)

        def run() -> None:
            compose_batch(pool, done, flagged=flagged, size=batch, seed=seed)

        timed_runs = repeats if size < 1_000_000 else 1
        if timed_runs > 1:
            run()  # warm-up: first-call imports and page faults
        times = []
        for _ in range(timed_runs):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        uncertainty_scores(pool.proba, "margin")
        scoring = time.perf_counter() - started
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        run()
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        rows.append({"pool": size, "labelled": labelled, "batch": batch, "runs": times,
                     "median": statistics.median(times), "margin_scoring": scoring,
                     "peak_extra_mib": peak / MIB,
                     "inputs_mib": (pool.embeddings.nbytes + pool.proba.nbytes) / MIB})
    return rows


def scoring_cost(model, texts: list[str]) -> dict:
    """Seconds to score and embed real texts: what a cycle spends before ``compose_batch``."""
    started = time.perf_counter()
    proba = model.predict_proba(texts)
    uncertainty_scores(proba, "margin")
    predict = time.perf_counter() - started
    started = time.perf_counter()
    embed_texts(texts)
    embed = time.perf_counter() - started
    return {"texts": len(texts), "predict_seconds": predict, "embed_seconds": embed}
