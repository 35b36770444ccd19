"""Span-model retrain speed at equal quality (issue 16): candidate CRFs against today's, in one run.

Fits every candidate on 2,000 ``snips_slots`` train sentences (39 types) through
``backend.model.span_model.fit_span_model`` (a candidate is passed as a tagger factory), on
``--draws`` different 2,000-sentence samples (draw 0 is the one ``bench.ner_quality --speed``
times), candidates alternating within a draw so machine load hits all alike. Reported per
candidate: CPU and wall seconds of one fit (mean over draws) and CPU as a ratio to the current
default's on the same draw, and on all 697 test sentences entity micro-F1 (mean ± std over
draws) and how meaningful the model's probabilities are, which the loop's uncertainty measure
(MNLP) relies on: the Brier score of the task score P(best path) against "the sentence is
tagged exactly right", the gap between mean P(best path) and the exact-match rate (a perceptron's
unscaled weights show up here), and the AUROC with which MNLP ranks wrongly tagged sentences
above right ones.

The training cost of a linear-chain CRF grows with the square of the number of tags (every
token's forward-backward pass runs over all tag pairs), so the candidates vary the tag scheme
(BIO: 79 tags; IOB1: ``I-`` throughout, ``B-`` only between adjacent same-type entities, about
40 tags, the same spans) and the optimiser (L-BFGS iterations and memory; SGD; averaged
perceptron).

Usage (from the repository root)::

    python -m bench.ner_retrain_speed              # 3 draws, prints a Markdown table
    python -m bench.ner_retrain_speed --draws 1 --only "current default" "IOB1, L-BFGS 50, memory 20"
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import sklearn_crfsuite
from seqeval.metrics import f1_score
from sklearn.metrics import roc_auc_score

from backend.model.span_model import fit_span_model
from backend.model.span_tokens import runs_to_tags, spans_to_tags, tag_runs
from bench.data import DEFAULT_DATASETS
from bench.ner_quality import Sentences, entity_types, load_snips

SIZE = 2000


class SchemeCRF(sklearn_crfsuite.CRF):
    """sklearn-crfsuite's CRF fitted on the spans of its tags re-encoded in one tag scheme, so a
    candidate fixes its scheme whatever scheme the product writes."""

    scheme = "bio"

    def fit(self, X: Any, y: Any, X_dev: Any = None, y_dev: Any = None) -> SchemeCRF:
        return super().fit(X, [runs_to_tags(tag_runs(tags), len(tags), self.scheme) for tags in y], X_dev, y_dev)


class IOB1CRF(SchemeCRF):
    scheme = "iob1"


def _crf(scheme: type[SchemeCRF], **options: Any) -> SchemeCRF:
    return scheme(all_possible_transitions=True, **options)


#: The candidates, each a factory taking no argument (``fit_span_model``'s ``tagger`` is its
#: dotted path). L-BFGS runs keep the default's c1 = c2 = 0.1.
LBFGS = {"algorithm": "lbfgs", "c1": 0.1, "c2": 0.1}
bio_lbfgs_100 = partial(_crf, SchemeCRF, **LBFGS, max_iterations=100)  # the default before this benchmark
bio_lbfgs_50 = partial(_crf, SchemeCRF, **LBFGS, max_iterations=50)
bio_lbfgs_50_m20 = partial(_crf, SchemeCRF, **LBFGS, max_iterations=50, num_memories=20)
bio_lbfgs_40_m20 = partial(_crf, SchemeCRF, **LBFGS, max_iterations=40, num_memories=20)
bio_lbfgs_35_m20 = partial(_crf, SchemeCRF, **LBFGS, max_iterations=35, num_memories=20)
bio_lbfgs_30_m20 = partial(_crf, SchemeCRF, **LBFGS, max_iterations=30, num_memories=20)
bio_lbfgs_40_m20_minfreq2 = partial(_crf, SchemeCRF, **LBFGS, max_iterations=40, num_memories=20, min_freq=2)
bio_lbfgs_minfreq2 = partial(_crf, SchemeCRF, **LBFGS, max_iterations=100, min_freq=2)
iob1_lbfgs_100 = partial(_crf, IOB1CRF, **LBFGS, max_iterations=100)
iob1_lbfgs_50_m20 = partial(_crf, IOB1CRF, **LBFGS, max_iterations=50, num_memories=20)
iob1_lbfgs_70_m20 = partial(_crf, IOB1CRF, **LBFGS, max_iterations=70, num_memories=20)
iob1_l2sgd_10 = partial(_crf, IOB1CRF, algorithm="l2sgd", c2=0.1, max_iterations=10)
iob1_ap_10 = partial(_crf, IOB1CRF, algorithm="ap", max_iterations=10)


BASELINE = "current default"
CANDIDATES = {
    BASELINE: None,
    "BIO, L-BFGS 100 (before)": "bench.ner_retrain_speed:bio_lbfgs_100",
    "BIO, L-BFGS 50": "bench.ner_retrain_speed:bio_lbfgs_50",
    "BIO, L-BFGS 50, memory 20": "bench.ner_retrain_speed:bio_lbfgs_50_m20",
    "BIO, L-BFGS 40, memory 20": "bench.ner_retrain_speed:bio_lbfgs_40_m20",
    "BIO, L-BFGS 35, memory 20": "bench.ner_retrain_speed:bio_lbfgs_35_m20",
    "BIO, L-BFGS 30, memory 20": "bench.ner_retrain_speed:bio_lbfgs_30_m20",
    "BIO, L-BFGS 100, feature min. freq. 2": "bench.ner_retrain_speed:bio_lbfgs_minfreq2",
    "BIO, L-BFGS 40, memory 20, feature min. freq. 2": "bench.ner_retrain_speed:bio_lbfgs_40_m20_minfreq2",
    "IOB1, L-BFGS 100": "bench.ner_retrain_speed:iob1_lbfgs_100",
    "IOB1, L-BFGS 70, memory 20": "bench.ner_retrain_speed:iob1_lbfgs_70_m20",
    "IOB1, L-BFGS 50, memory 20": "bench.ner_retrain_speed:iob1_lbfgs_50_m20",
    "IOB1, SGD (l2sgd) 10 epochs": "bench.ner_retrain_speed:iob1_l2sgd_10",
    "IOB1, averaged perceptron 10 epochs": "bench.ner_retrain_speed:iob1_ap_10",
}


def quality(model: Any, test: Sentences) -> dict[str, float]:
    """Entity F1 and how well P(best path) and MNLP tell right from wrong sentences (see the docstring)."""
    tagged = model.tag(test.texts)
    truth = [spans_to_tags(s.offsets, spans) for s, spans in zip(tagged, test.spans)]
    found = [runs_to_tags(tag_runs(s.tags), len(s.tags)) for s in tagged]
    exact = np.array([t == f for t, f in zip(truth, found)], dtype=float)
    path = np.exp([s.path_logprob for s in tagged])
    return {"f1": float(f1_score(truth, found)), "brier": float(np.mean((path - exact) ** 2)),
            "gap": float(path.mean() - exact.mean()),
            "auroc": float(roc_auc_score(1 - exact, model.uncertainty(tagged, "mnlp")))}


def measure(draws: int, names: Sequence[str], datasets: Path) -> dict[str, list[dict[str, float]]]:
    """Per candidate, one record per draw: ``cpu``, ``wall``, ``ratio`` (CPU / the baseline's) and quality."""
    train, test, types = load_snips("train", datasets), load_snips("test", datasets), entity_types(datasets)
    out: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for draw in range(draws):
        rows = np.random.default_rng(draw).choice(len(train.texts), size=SIZE, replace=False)
        texts, spans = [train.texts[i] for i in rows], [train.spans[i] for i in rows]
        for name in names:
            started, cpu_started = time.perf_counter(), time.process_time()
            model = fit_span_model(texts, spans, labels=types, version="speed", tagger=CANDIDATES[name])
            record = {"cpu": time.process_time() - cpu_started, "wall": time.perf_counter() - started}
            out[name].append(record | quality(model, test))
            print(f"draw {draw} {name}: {out[name][-1]}", flush=True)
        base = out[BASELINE][-1]["cpu"] if BASELINE in out else float("nan")
        for name in names:
            out[name][-1]["ratio"] = out[name][-1]["cpu"] / base
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    runs = measure(args.draws, args.only, args.datasets)
    print(f"load average at end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print(f"| model | CPU s (mean of {args.draws}) | x current | wall s | test entity F1 | Brier, P(path) | "
          "P(path) - exact rate | MNLP AUROC |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, records in runs.items():
        mean = {key: float(np.mean([r[key] for r in records])) for key in records[0]}
        f1_std = float(np.std([r["f1"] for r in records]))
        print(f"| {name} | {mean['cpu']:.1f} | {mean['ratio']:.2f} | {mean['wall']:.1f} | "
              f"{mean['f1']:.3f} ± {f1_std:.3f} | {mean['brier']:.3f} | {mean['gap']:+.3f} | {mean['auroc']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
