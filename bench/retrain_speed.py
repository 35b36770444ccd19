"""Retrain speed at equal accuracy: today's default model against the previous one, same run.

Fits both on the whole banking77 train split (10,003 labels) through ``backend.model.fit_model``
(the previous pipeline is passed as a classifier factory), ``--repeats`` times each, alternating
so machine load hits both alike, and reports the median fit seconds and the held-out accuracy.

Usage (from the repository root)::

    python bench/retrain_speed.py             # 3 repeats, prints a Markdown table
    python bench/retrain_speed.py --repeats 1
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from backend.model import fit_model  # noqa: E402
from bench.data import DEFAULT_DATASETS, load_dataset  # noqa: E402


def previous_estimator() -> Pipeline:
    """The default model before issue 12: balanced weights, L-BFGS at scikit-learn's tol."""
    return Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                  strip_accents="unicode", max_features=200_000)),
        ("clf", LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000)),
    ])


def measure(repeats: int, datasets: Path) -> list[tuple[str, float, float]]:
    data = load_dataset("banking77", datasets)
    texts, names = data.train.texts, [(data.categories[y],) for y in data.train.labels]
    models = {"previous (balanced, L-BFGS tol 1e-4)": "bench.retrain_speed:previous_estimator",
              "current default": None}
    seconds: dict[str, list[float]] = {name: [] for name in models}
    accuracy: dict[str, float] = {}
    for _ in range(repeats):
        for name, classifier in models.items():
            started = time.perf_counter()
            model = fit_model(texts, names, labels=data.categories, multilabel=False,
                              version="speed", classifier=classifier)
            seconds[name].append(time.perf_counter() - started)
            predicted = model.predict_proba(data.test.texts).argmax(axis=1)
            accuracy[name] = float(np.mean(predicted == data.test.labels))
    return [(name, float(np.median(seconds[name])), accuracy[name]) for name in models]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = measure(args.repeats, args.datasets)
    print(f"load average at end: {os.getloadavg()[0]:.1f} (2 cores)")
    print("| model | fit s (median of %d) | held-out accuracy |" % args.repeats)
    print("|---|---:|---:|")
    for name, fit, acc in rows:
        print(f"| {name} | {fit:.2f} | {acc:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
