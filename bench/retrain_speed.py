"""Retrain speed at equal accuracy: candidate default models against today's, in the same run.

Fits every candidate on the whole banking77 train split (10,003 labels) through
``backend.model.fit_model`` (a candidate is passed as a classifier factory), ``--repeats``
times each, alternating so machine load hits all alike, and reports the median wall and CPU
seconds of one fit, both as a ratio to the current default's in the same run, and the held-out
accuracy. The default solver is single-threaded, so CPU seconds barely move with other load on
the machine while wall seconds do; the ratios are the comparable numbers on a shared machine.

``--warm`` also measures what a retrain in the product does: the current default fitted on
10,003 labels with ``warm_from`` the model fitted on 9,903 of them (the previous retrain, one
batch of 100 earlier), whose coefficients seed the solver.

Usage (from the repository root)::

    python bench/retrain_speed.py             # 3 repeats, prints a Markdown table
    python bench/retrain_speed.py --repeats 1 --previous
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

from backend.model import default_estimator, fit_model  # noqa: E402
from bench.data import DEFAULT_DATASETS, load_dataset  # noqa: E402

BASELINE = "current default"
WARM = "current default, warm start from 100 labels fewer"


def previous_estimator() -> Pipeline:
    """The default model before issue 12: balanced weights, L-BFGS at scikit-learn's tol."""
    return Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                  strip_accents="unicode", max_features=200_000)),
        ("clf", LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000)),
    ])


def _variant(min_df: int = 1, tol: float | None = None) -> Pipeline:
    pipeline = default_estimator()
    pipeline.set_params(tfidf__min_df=min_df, **({"clf__tol": tol} if tol else {}))
    return pipeline


def min_df_2() -> Pipeline:
    return _variant(min_df=2)


def tol_2e3() -> Pipeline:
    return _variant(tol=2e-3)


def min_df_2_tol_2e3() -> Pipeline:
    return _variant(min_df=2, tol=2e-3)


CANDIDATES = {BASELINE: None, "min_df=2": "bench.retrain_speed:min_df_2",
              "tol=2e-3": "bench.retrain_speed:tol_2e3",
              "min_df=2, tol=2e-3": "bench.retrain_speed:min_df_2_tol_2e3"}
PREVIOUS = {"previous (balanced, L-BFGS tol 1e-4)": "bench.retrain_speed:previous_estimator"}


def measure(repeats: int, datasets: Path, *, previous: bool = True, warm: bool = False
            ) -> list[tuple[str, float, float, float]]:
    """``(model, median wall s, median CPU s, held-out accuracy)`` per candidate."""
    data = load_dataset("banking77", datasets)
    texts, names = data.train.texts, [(data.categories[y],) for y in data.train.labels]
    models = {**(PREVIOUS if previous else {}), **CANDIDATES}
    start_rows = np.sort(np.random.default_rng(0).permutation(len(texts))[:-100])
    start = fit_model([texts[i] for i in start_rows], [names[i] for i in start_rows],
                      labels=data.categories, multilabel=False, version="start") if warm else None
    runs = {name: {"classifier": classifier} for name, classifier in models.items()}
    if warm:
        runs[WARM] = {"warm_from": start}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    accuracy: dict[str, float] = {}
    for _ in range(repeats):
        for name, options in runs.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            model = fit_model(texts, names, labels=data.categories, multilabel=False, version="speed", **options)
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
            predicted = model.predict_proba(data.test.texts).argmax(axis=1)
            accuracy[name] = float(np.mean(predicted == data.test.labels))
    return [(name, float(np.median(wall[name])), float(np.median(cpu[name])), accuracy[name])
            for name in wall]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--previous", action="store_true", help="also the pre-issue-12 model (slow)")
    parser.add_argument("--warm", action="store_true", help="also a warm start from 9,903 labels")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = measure(args.repeats, args.datasets, previous=args.previous, warm=args.warm)
    base = {name: (w, c) for name, w, c, _ in rows}[BASELINE]
    print(f"load average at end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print(f"| model | wall s (median of {args.repeats}) | x current | CPU s | x current | held-out accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, w, c, acc in rows:
        print(f"| {name} | {w:.2f} | {w / base[0]:.2f} | {c:.2f} | {c / base[1]:.2f} | {acc:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
