"""The peer libraries' strategies on our model and our features, through their public APIs.

Every peer sees the same model as labelqueue: the cycle's probabilities come from the product's
default estimator and are handed to each library through a tiny adapter that answers
``predict_proba`` (and small-text's ``embed``) by looking rows up, so no library refits or
wraps its own classifier. Feature-based strategies get the product's 256-d selection
embeddings (``backend.model.features.embed_texts``), the same ones ``compose_batch`` uses.

Two peers are too slow on a 10k pool to run on all of it every cycle (measured on this
machine at 2,000-3,000 labels: small-text ``GreedyCoreset`` 25-38 s per batch of 100, modAL
ranked batch 18-22 s). Both therefore run on a seeded uniform candidate subsample of the
unlabelled pool (``PEER_SUBSAMPLE`` rows; for small-text through its own
``SubsamplingQueryStrategy``), which is how those libraries document scaling to large pools.

small-text and scikit-learn's KMeans inside it draw from numpy's global random state; the
adapters seed it from the cycle seed right before each call so runs replay exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from bench.strategies import CycleState, SelectFn, Strategy

#: Candidate subsample for the two quadratic peers (see module docstring).
PEER_SUBSAMPLE = 1_000


# --- scikit-activeml ----------------------------------------------------------------------

def _skactiveml_classifier(proba: np.ndarray):
    """A fitted-looking scikit-activeml classifier whose ``X`` is a column of pool row ids."""
    from skactiveml.base import SkactivemlClassifier

    class Precomputed(SkactivemlClassifier):
        """Answers ``predict_proba`` from the cycle's probabilities; ``fit`` is a no-op."""

        def __init__(self, classes=None, missing_label=np.nan):
            super().__init__(classes=classes, missing_label=missing_label)

        def fit(self, X, y, sample_weight=None):
            self.classes_ = np.asarray(self.classes)
            return self

        def predict_proba(self, X):
            return proba[np.asarray(X)[:, 0].astype(np.int64)]

    return Precomputed(classes=np.arange(proba.shape[1])).fit(None, None)


def _partial_labels(state: CycleState) -> np.ndarray:
    """scikit-activeml's ``y``: the given label on labelled rows, NaN elsewhere."""
    y = np.full(len(state.proba), np.nan)
    y[state.labelled] = state.given
    return y


def skactiveml_margin(state: CycleState, size: int, seed: int) -> np.ndarray:
    from skactiveml.pool import UncertaintySampling

    rows = np.arange(len(state.proba), dtype=float)[:, None]
    strategy = UncertaintySampling(method="margin_sampling", random_state=seed)
    return np.asarray(strategy.query(rows, _partial_labels(state),
                                     clf=_skactiveml_classifier(state.proba), fit_clf=False,
                                     batch_size=size), dtype=np.int64)


def skactiveml_coreset(state: CycleState, size: int, seed: int) -> np.ndarray:
    from skactiveml.pool import CoreSet

    return np.asarray(CoreSet(random_state=seed).query(state.embeddings, _partial_labels(state),
                                                        batch_size=size), dtype=np.int64)


def skactiveml_typiclust(state: CycleState, size: int, seed: int) -> np.ndarray:
    from skactiveml.pool import TypiClust

    return np.asarray(TypiClust(random_state=seed).query(state.embeddings, _partial_labels(state),
                                                          batch_size=size), dtype=np.int64)


# --- small-text ---------------------------------------------------------------------------

class _SmallTextModel:
    """small-text's classifier protocol over pool row ids: ``predict_proba`` and ``embed``."""

    def __init__(self, state: CycleState):
        self.state = state

    def predict_proba(self, dataset: np.ndarray) -> np.ndarray:
        return self.state.proba[np.asarray(dataset)]

    def embed(self, dataset: np.ndarray, return_proba: bool = False, pbar=None, **kwargs):
        rows = np.asarray(dataset)
        if return_proba:
            return self.state.embeddings[rows], self.state.proba[rows]
        return self.state.embeddings[rows]


def _small_text(make_strategy: Callable[[], object]) -> SelectFn:
    def select(state: CycleState, size: int, seed: int) -> np.ndarray:
        np.random.seed(seed % 2**32)
        labelled = np.asarray(state.labelled, dtype=np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            picked = make_strategy().query(_SmallTextModel(state), np.arange(len(state.proba)),
                                           state.unlabelled, labelled, state.given, n=size)
        return np.asarray(picked, dtype=np.int64)

    return select


def _breaking_ties():
    from small_text.query_strategies import BreakingTies

    return BreakingTies()


def _greedy_coreset():
    from small_text.query_strategies import GreedyCoreset, SubsamplingQueryStrategy

    return SubsamplingQueryStrategy(GreedyCoreset(), subsample_size=PEER_SUBSAMPLE)


def _embedding_kmeans():
    from small_text.query_strategies import EmbeddingKMeans

    return EmbeddingKMeans()


# --- modAL --------------------------------------------------------------------------------

class _ModalModel:
    """What modAL reads from a learner: ``predict_proba``, ``X_training``, ``on_transformed``."""

    on_transformed = False

    def __init__(self, proba: np.ndarray, x_training: np.ndarray | None = None):
        self.proba = proba
        self.X_training = x_training

    def predict_proba(self, X) -> np.ndarray:
        if len(X) != len(self.proba):
            raise ValueError("modAL adapter asked about rows it was not built for")
        return self.proba


def modal_margin(state: CycleState, size: int, seed: int) -> np.ndarray:
    from modAL.uncertainty import margin_sampling

    rows = state.unlabelled
    picked = margin_sampling(_ModalModel(state.proba[rows]), rows[:, None], n_instances=size)
    return rows[np.asarray(picked[0] if isinstance(picked, tuple) else picked)]


def modal_ranked(state: CycleState, size: int, seed: int) -> np.ndarray:
    from modAL.batch import uncertainty_batch_sampling

    rows = state.unlabelled
    if len(rows) > PEER_SUBSAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(rows, PEER_SUBSAMPLE, replace=False))
    model = _ModalModel(state.proba[rows], state.embeddings[state.labelled])
    picked = uncertainty_batch_sampling(model, state.embeddings[rows], n_instances=size)
    return rows[np.asarray(picked[0] if isinstance(picked, tuple) else picked)]


def peer_strategies() -> list[Strategy]:
    """The peers' strategies, each named ``<library>-<strategy>``."""
    sub = f"{PEER_SUBSAMPLE:,}-row candidate subsample"
    return [
        Strategy("skal-margin", "scikit-activeml", "`UncertaintySampling(margin_sampling)`",
                 skactiveml_margin, "margin"),
        Strategy("skal-coreset", "scikit-activeml", "`CoreSet` (k-center greedy) on our embeddings",
                 skactiveml_coreset, "skal-coreset"),
        Strategy("skal-typiclust", "scikit-activeml", "`TypiClust` (KMeans, k=5 typicality) on our "
                 "embeddings", skactiveml_typiclust, "skal-typiclust"),
        Strategy("st-breakingties", "small-text", "`BreakingTies`", _small_text(_breaking_ties),
                 "margin"),
        Strategy("st-coreset", "small-text", f"`GreedyCoreset` via `SubsamplingQueryStrategy` "
                 f"({sub})", _small_text(_greedy_coreset), "st-coreset"),
        Strategy("st-kmeans", "small-text", "`EmbeddingKMeans` on our embeddings",
                 _small_text(_embedding_kmeans), "st-kmeans"),
        Strategy("modal-margin", "modAL", "`margin_sampling`", modal_margin, "margin"),
        Strategy("modal-ranked", "modAL", f"`uncertainty_batch_sampling` (ranked batch, {sub})",
                 modal_ranked, "modal-ranked"),
    ]
