"""What every strategy sees each cycle, the registry of strategies, and labelqueue's own ones.

A strategy is a function ``(state, size, seed) -> rows`` that returns ``size`` distinct pool
rows that are not labelled yet. Everything a real backend would know at selection time is in
:class:`CycleState`; the true labels are not, so no strategy can peek.

labelqueue's strategies call the product's selection code exactly as the backend does:
:func:`selection.batch.compose_batch` for the mixed batch and single-slice variants, and
:func:`selection.uncertainty.uncertainty_scores` for plain top-k, so the benchmark measures
what ships. Peer libraries live in ``bench/peers.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from selection.batch import Batch, LabelledSet, Pool, Tuning, compose_batch
from selection.mix import SliceMix
from selection.uncertainty import uncertainty_scores


@dataclass(frozen=True, eq=False)
class CycleState:
    """Everything known when a batch is chosen.

    Attributes
    ----------
    proba : ndarray of shape (n, k)
        Current model's probabilities for every pool row (columns in category order).
    embeddings : ndarray of shape (n, d)
        The product's selection features (``backend.model.features.embed_texts``), unit rows.
    labelled : ndarray of shape (m,) of int
        Labelled rows, in labelling order.
    given : ndarray of shape (m,) of int
        The annotator's label for each labelled row (possibly wrong).
    overridden : ndarray of shape (m,) of bool
        Where the annotator disagreed with the model's prediction when the row was picked.
    flagged : ndarray of shape (f,) of int
        Rows flagged as production failures so far, oldest first (labelled ones included;
        ``compose_batch`` ignores them).
    """

    proba: np.ndarray
    embeddings: np.ndarray
    labelled: np.ndarray
    given: np.ndarray
    overridden: np.ndarray
    flagged: np.ndarray

    @property
    def unlabelled(self) -> np.ndarray:
        """Unlabelled rows, ascending."""
        mask = np.ones(len(self.proba), dtype=bool)
        mask[self.labelled] = False
        return np.flatnonzero(mask)


SelectFn = Callable[[CycleState, int, int], np.ndarray]


@dataclass(frozen=True)
class Strategy:
    """A named strategy with where it comes from, for tables and plots.

    Attributes
    ----------
    name : short id used on the command line and in tables.
    source : "labelqueue", "baseline", "scikit-activeml", "small-text" or "modAL".
    description : one line for the results table.
    select : the selection function.
    family : strategies expected to pick identical batches share a family, so the simulation
        runs them in one worker and reuses their identical model fits.
    """

    name: str
    source: str
    description: str
    select: SelectFn
    family: str = ""


def random_rows(state: CycleState, size: int, seed: int) -> np.ndarray:
    """Uniform sample of unlabelled rows: the baseline every strategy must beat."""
    return np.random.default_rng(seed).choice(state.unlabelled, size=size, replace=False)


def top_k(measure: str) -> SelectFn:
    """Plain top-k by one of the product's uncertainty measures (no band, no duplicate guard)."""

    def select(state: CycleState, size: int, seed: int) -> np.ndarray:
        rows = state.unlabelled
        scores = uncertainty_scores(state.proba[rows], measure)
        best = np.argpartition(-scores, size - 1)[:size]
        return rows[best[np.lexsort((rows[best], -scores[best]))]]

    return select


def compose(state: CycleState, size: int, seed: int, mix: SliceMix | None = None, measure: str = "margin",
            tuning: Tuning = Tuning()) -> Batch:
    """The product's ``compose_batch`` on one cycle's state, as the backend calls it: task id =
    row + 1 (ids are positive), the given labels and the model's probabilities on the labelled
    items passed with the labelled set."""
    pool = Pool(np.arange(1, len(state.proba) + 1), state.proba, state.embeddings)
    labelled = LabelledSet(state.labelled + 1, state.embeddings[state.labelled],
                           state.overridden, labels=state.given, proba=state.proba[state.labelled])
    return compose_batch(pool, labelled, flagged=(state.flagged + 1).tolist(), size=size,
                         mix=mix, seed=seed, measure=measure, tuning=tuning)


def batch_rows(batch: Batch) -> np.ndarray:
    """Pool rows of a batch :func:`compose` returned, in queue order."""
    return np.array([item.task_id - 1 for item in batch.items], dtype=np.int64)


def labelqueue(mix: SliceMix | None, measure: str = "margin", tuning: Tuning = Tuning()
               ) -> SelectFn:
    """:func:`compose` with a given mix (``None``: the scheduled default) as a strategy."""

    def select(state: CycleState, size: int, seed: int) -> np.ndarray:
        return batch_rows(compose(state, size, seed, mix, measure, tuning))

    return select


UNCERTAIN_ONLY = SliceMix(uncertain=1.0, diverse=0.0, failure=0.0, control=0.0)
DIVERSE_ONLY = SliceMix(uncertain=0.0, diverse=1.0, failure=0.0, control=0.0)
MEASURE_SHORT = {"margin": "margin", "entropy": "entropy", "least_confidence": "lc"}


def own_strategies() -> list[Strategy]:
    """Random, plain top-k per measure, labelqueue's single slices, and the default mix."""
    found = [Strategy("random", "baseline", "uniform random sample", random_rows, "random")]
    for measure, short in MEASURE_SHORT.items():
        found.append(Strategy(f"topk-{short}", "labelqueue",
                              f"plain top-k by our `{measure}` score", top_k(measure),
                              "margin" if measure == "margin" else f"topk-{short}"))
    for measure, short in MEASURE_SHORT.items():
        found.append(Strategy(f"lq-uncertain-{short}", "labelqueue",
                              f"`compose_batch`, uncertain slice only ({measure}: band x3, "
                              "duplicate guard)", labelqueue(UNCERTAIN_ONLY, measure),
                              f"lq-uncertain-{short}"))
    found.append(Strategy("lq-diverse", "labelqueue",
                          "`compose_batch`, diverse slice only (typicality-weighted coverage)",
                          labelqueue(DIVERSE_ONLY), "lq-diverse"))
    found.append(Strategy("lq-mix", "labelqueue",
                          "`compose_batch`, default scheduled mix (uncertain/diverse 0.50/0.30 "
                          "moving to 0.60/0.20 by 10 labels per class, failure 0.15, control "
                          "0.05) with production flags and overrides", labelqueue(None),
                          "lq-mix"))
    return found
