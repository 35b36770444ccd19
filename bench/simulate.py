"""The simulated labelling loop: seed, then cycles of select -> annotate -> retrain -> evaluate.

One :class:`Scenario` fixes everything that must be identical across strategies for one
benchmark seed and annotator: the labelled seed, the annotator's answer for every item, which
pool items are production traffic and when they arrive, and which mistakes users would notice.
A strategy only changes which items get labelled.

Production traffic: a seeded share of the pool arrives in equal chunks, one per cycle. The
model in service predicts each chunk as it arrives; a mispredicted item is flagged as a failure
when its pre-drawn "user notices" draw is below ``flag_rate``. Flagged items stay in the pool,
selectable by every strategy, but only labelqueue's failure slice reads the flags, as in
production. Overrides (annotator disagreed with the model at selection time) are recorded for
every strategy and likewise only read by labelqueue.

Production shift (``shift=True``): real production traffic rarely has the pool's class mix. A
seeded fifth of the classes (drawn favouring classes rare in the pool) gets 70 % of the traffic,
the other classes share the rest in proportion to the pool. Every evaluated model is also scored
on held-out production traffic: its per-class accuracy on the test split weighted by the
production class distribution (exactly the expected accuracy on a test set resampled to that
distribution). Without a shift the production distribution is the pool's.

Retraining is the product's own ``backend.model.fit_model`` on the labelled set in row order, so
the fit depends only on the set and its labels. Fits are memoised per worker on exactly that,
which lets strategies that pick identical batches (the peers' margin sampling and our top-k
margin) share fits without changing any result.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score

from backend.model.classifier import fit_model
from bench.data import Split
from bench.strategies import CycleState, Strategy


@dataclass(frozen=True, eq=False)
class Scenario:
    """Everything fixed for one (benchmark seed, annotator) pair; shared by all strategies."""

    seed: int
    annotator: str
    pool: Split
    test: Split
    categories: tuple[str, ...]
    embeddings: np.ndarray
    answers: np.ndarray
    seed_rows: np.ndarray
    arrivals: list[np.ndarray]
    notice: np.ndarray
    flag_rate: float
    batch: int
    budget: int
    production_weights: np.ndarray

    @property
    def cycles(self) -> int:
        """Selection cycles after the seed."""
        return len(self.arrivals)


def make_scenario(seed: int, annotator: str, pool: Split, test: Split,
                  categories: tuple[str, ...], embeddings: np.ndarray, answers: np.ndarray, *,
                  seed_size: int, batch: int, budget: int, production: float,
                  flag_rate: float, shift: bool = False) -> Scenario:
    """Draw the seed set, production traffic and notice draws for one benchmark seed.

    The draws depend on ``seed`` only (not on the annotator), so oracle and noisy runs of a
    seed start from the same labelled items and see the same traffic.
    """
    rng = np.random.default_rng([seed, 77])
    order = rng.permutation(len(pool))
    seed_rows = np.sort(order[:seed_size])
    cycles = int(np.ceil((budget - seed_size) / batch))
    notice = rng.random(len(pool))
    counts = np.bincount(pool.labels, minlength=len(categories)).astype(float)
    weights = counts / counts.sum()
    size = int(round(production * len(pool)))
    if shift:
        weights = shifted_distribution(counts, np.random.default_rng([seed, 78]))
        rest = order[seed_size:]
        p = weights[pool.labels[rest]] / counts[pool.labels[rest]]
        traffic = rng.choice(rest, size=min(size, int(np.count_nonzero(p))), replace=False,
                             p=p / p.sum())
    else:
        traffic = order[seed_size:seed_size + size]
    arrivals = [np.sort(chunk) for chunk in np.array_split(traffic, cycles)]
    return Scenario(seed, annotator, pool, test, categories, embeddings, answers, seed_rows,
                    arrivals, notice, flag_rate, batch, budget, weights)


def shifted_distribution(counts: np.ndarray, rng: np.random.Generator, share: float = 0.7,
                         fraction: float = 0.2) -> np.ndarray:
    """A production class distribution unlike the pool's ``counts``.

    ``max(2, fraction * k)`` classes, drawn with probability proportional to ``1 / count`` (so
    classes rare in the pool are likely), receive ``share`` of the traffic equally; the other
    classes share the rest in proportion to the pool.
    """
    k = len(counts)
    hot = rng.choice(k, size=max(2, int(round(fraction * k))), replace=False,
                     p=(1 / counts) / (1 / counts).sum())
    weights = np.zeros(k)
    cold = np.setdiff1d(np.arange(k), hot)
    weights[hot] = share / len(hot)
    weights[cold] = (1 - share) * counts[cold] / counts[cold].sum()
    return weights


def weighted_accuracy(predicted: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> float:
    """Accuracy on traffic with class distribution ``weights``, from per-class test accuracy."""
    correct = np.bincount(truth, weights=(predicted == truth).astype(float), minlength=len(weights))
    present = np.bincount(truth, minlength=len(weights))
    per_class = np.divide(correct, present, out=np.zeros(len(weights)), where=present > 0)
    return float(np.sum(weights * per_class) / np.sum(weights[present > 0]))


@dataclass(frozen=True)
class Fit:
    """A retrained model's outputs that the loop needs."""

    proba: np.ndarray
    accuracy: float
    macro_f1: float
    seconds: float
    production_accuracy: float


class FitCache:
    """Memoised ``fit_model`` keyed on the labelled rows and their given labels (per worker)."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self._fits: dict[bytes, Fit] = {}
        self.hits = 0

    def fit(self, rows: np.ndarray, given: np.ndarray) -> tuple[Fit, bool]:
        """The model trained on ``rows`` labelled ``given``; ``True`` if it came from the cache."""
        order = np.argsort(rows, kind="stable")
        rows, given = rows[order], given[order]
        key = hashlib.blake2b(rows.tobytes() + given.tobytes(), digest_size=16).digest()
        if key in self._fits:
            self.hits += 1
            return self._fits[key], True
        s = self.scenario
        names = [(s.categories[int(y)],) for y in given]
        started = time.perf_counter()
        model = fit_model([s.pool.texts[int(r)] for r in rows], names, labels=s.categories,
                          multilabel=False, version="sim")
        seconds = time.perf_counter() - started
        proba = model.predict_proba(s.pool.texts)
        predicted = model.predict_proba(s.test.texts).argmax(axis=1)
        fit = Fit(proba, float(np.mean(predicted == s.test.labels)),
                  float(f1_score(s.test.labels, predicted, average="macro",
                                 labels=np.arange(len(s.categories)), zero_division=0)),
                  seconds, weighted_accuracy(predicted, s.test.labels, s.production_weights))
        self._fits[key] = fit
        return fit, False


class InvalidBatchError(RuntimeError):
    """A strategy returned rows that are duplicated, already labelled or the wrong count."""


def _check_batch(name: str, picked: np.ndarray, labelled_mask: np.ndarray, wanted: int) -> None:
    if len(picked) != wanted or len(np.unique(picked)) != wanted or labelled_mask[picked].any():
        raise InvalidBatchError(
            f"strategy {name!r} returned {len(picked)} rows ({len(np.unique(picked))} distinct, "
            f"{int(labelled_mask[picked].sum())} already labelled); expected {wanted} new rows")


def run_strategy(scenario: Scenario, strategy: Strategy, cache: FitCache,
                 on_cycle: Callable[[], None] = lambda: None) -> list[dict]:
    """Run the loop for one strategy and return one record per evaluated model.

    Records hold the labels count, test accuracy and macro-F1, the label noise among items the
    strategy chose (the seed excluded, as it is shared), and per-cycle timings.
    """
    s = scenario
    truth = s.pool.labels
    labelled = list(s.seed_rows)
    given = list(s.answers[s.seed_rows])
    overridden = [False] * len(labelled)
    mask = np.zeros(len(s.pool), dtype=bool)
    mask[s.seed_rows] = True
    flagged: list[int] = []
    records: list[dict] = []
    chosen_wrong = chosen = 0
    for cycle in range(s.cycles + 1):
        fit, cached = cache.fit(np.asarray(labelled), np.asarray(given))
        record = {"strategy": strategy.name, "seed": s.seed, "annotator": s.annotator,
                  "cycle": cycle, "labels": len(labelled), "accuracy": fit.accuracy,
                  "macro_f1": fit.macro_f1, "noise_rate": chosen_wrong / chosen if chosen else 0.0,
                  "fit_seconds": fit.seconds, "fit_cached": cached,
                  "production_accuracy": fit.production_accuracy}
        records.append(record)
        if cycle == s.cycles or len(labelled) >= s.budget:
            break
        arrived = s.arrivals[cycle]
        predicted = fit.proba[arrived].argmax(axis=1)
        wrong = arrived[predicted != truth[arrived]]
        flagged.extend(int(r) for r in wrong if s.notice[r] < s.flag_rate and not mask[r])
        record["production_error"] = float(np.mean(predicted != truth[arrived])) if len(arrived) else 0.0

        size = min(s.batch, s.budget - len(labelled), int((~mask).sum()))
        state = CycleState(fit.proba, s.embeddings, np.asarray(labelled, dtype=np.int64),
                           np.asarray(given, dtype=np.int64), np.asarray(overridden, dtype=bool),
                           np.asarray(flagged, dtype=np.int64))
        started = time.perf_counter()
        picked = np.asarray(strategy.select(state, size, s.seed * 1_000 + cycle), dtype=np.int64)
        record["select_seconds"] = time.perf_counter() - started
        _check_batch(strategy.name, picked, mask, size)

        answers = s.answers[picked]
        record["batch_noise"] = float(np.mean(answers != truth[picked]))
        record["flagged_picked"] = int(np.isin(picked, flagged).sum())
        chosen += len(picked)
        chosen_wrong += int(np.sum(answers != truth[picked]))
        overridden.extend((answers != fit.proba[picked].argmax(axis=1)).tolist())
        labelled.extend(picked.tolist())
        given.extend(answers.tolist())
        mask[picked] = True
        on_cycle()
    return records
