"""The classifier: a scikit-learn estimator wrapped with the labels and version it was trained on.

The default is TF-IDF (word 1-2 grams, sublinear tf) + logistic regression with class weights
balanced against a prior count (:class:`PriorBalancedLogisticRegression`): active learning makes
skewed label sets the norm, and unweighted logistic regression quietly stops predicting rare
classes, while fully balanced weights let one odd label of a class with five labels swing the
model onto hundreds of pool items. Any scikit-learn classifier with ``predict_proba`` can
replace it by dotted path (``LABELQUEUE_CLASSIFIER=package.module:factory_or_class``); it is
called with no arguments and must accept a list of strings in ``fit``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline

from backend.model.factories import build_from_factory


def prior_balanced_weights(y: Sequence[Any]) -> np.ndarray:
    """Per-sample weights ``1 / (n_c + n / k)``, rescaled to sum to ``n``; shape (n,).

    ``n_c`` is the count of the sample's class, ``n / k`` the mean class count. A class with
    very few labels weighs at most twice an average class, unlike ``n / (k * n_c)``.
    """
    _, inverse, counts = np.unique(np.asarray(y), return_inverse=True, return_counts=True)
    weight = (1.0 / (counts + len(inverse) / len(counts)))[inverse]
    return weight * (len(inverse) / float(np.sum(weight)))


class PriorBalancedLogisticRegression(LogisticRegression):
    """Logistic regression with class weights balanced against a prior count.

    ``class_weight="balanced"`` gives class ``c`` the weight ``n / (k * n_c)``, which grows
    without bound as ``n_c`` shrinks: in an active-learning loop a class with a handful of
    labels, one of them an atypical production failure, then outweighs everything near it.
    Here, when ``class_weight`` is ``None``, each sample of class ``c`` weighs
    ``1 / (n_c + n / k)`` (the mean class count ``n / k`` acts as a prior count), rescaled so
    the weights sum to ``n`` as balanced weights do. Rare classes are still boosted, but never
    by more than 2x the weight of an average class, and large classes are damped less than
    with full balancing. An explicit ``class_weight`` keeps scikit-learn's behaviour.
    """

    def fit(self, X: Any, y: Any, sample_weight: np.ndarray | None = None
            ) -> PriorBalancedLogisticRegression:
        if self.class_weight is None:
            per_sample = prior_balanced_weights(y)
            sample_weight = per_sample if sample_weight is None else per_sample * sample_weight
        return super().fit(X, y, sample_weight=sample_weight)


def default_estimator() -> Pipeline:
    """TF-IDF + prior-balanced logistic regression; see the module docstring for why.

    The solver (SAGA at ``tol=1e-3`` instead of L-BFGS at 1e-4) is a measured trade: on 10,003
    banking77 labels it cuts the fit to a fraction of the time at the same held-out accuracy
    (bench/RESULTS.md, "Retrain speed").
    """
    return Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                  strip_accents="unicode", max_features=200_000)),
        ("clf", PriorBalancedLogisticRegression(C=10.0, solver="saga", max_iter=300, tol=1e-3,
                                                random_state=0)),
    ])


def load_estimator(dotted: str | None) -> BaseEstimator:
    """Build the configured estimator; ``None`` means the default pipeline."""
    return build_from_factory(dotted, default_estimator, variable="LABELQUEUE_CLASSIFIER",
                              methods=("fit", "predict_proba"))


@dataclass
class TrainedModel:
    """A fitted estimator plus what is needed to map its output back to the config's labels.

    ``predict_proba`` always returns columns in ``labels`` order (the config's order), with zero
    probability for labels never seen in training, so callers never deal with ``classes_``.
    """

    version: str
    labels: tuple[str, ...]
    multilabel: bool
    estimator: Any
    trained_classes: tuple[str, ...]
    n_examples: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (n_texts, len(labels)); rows sum to 1 unless ``multilabel``."""
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        if not texts:
            return out
        raw = np.asarray(self.estimator.predict_proba(list(texts)), dtype=np.float64)
        columns = [self.labels.index(c) for c in self.trained_classes]
        out[:, columns] = raw
        return out


def fit_model(texts: Sequence[str], targets: Sequence[tuple[str, ...]], *, labels: tuple[str, ...],
              multilabel: bool, version: str, classifier: str | None = None,
              warm_from: TrainedModel | None = None) -> TrainedModel:
    """Fit a fresh estimator on resolved labels.

    ``targets`` holds one tuple of label names per text (exactly one for single-label). For
    multi-label configs each label seen both on and off gets its own binary classifier
    (one-vs-rest); labels never switched on cannot be learned and get probability zero.

    ``warm_from`` is the model in service. When both it and this fit use the default pipeline
    on single-label data with the same classes, the solver starts from its coefficients
    (:func:`warm_start_fit`): the problem and its optimum are the same, only the starting point
    is closer, so a retrain after one more batch needs about half the iterations at the same
    accuracy (bench/RESULTS.md, "Retrain speed"). Otherwise the fit starts from zero.
    """
    base = load_estimator(classifier)
    if multilabel:
        trained = tuple(label for label in labels if any(label in t for t in targets))
        y = np.array([[label in t for label in trained] for t in targets], dtype=int)
        estimator = _multilabel_estimator(base).fit(list(texts), y)
    else:
        y = [t[0] for t in targets]
        estimator = clone(base)
        if not (classifier is None and warm_start_fit(estimator, warm_from, list(texts), y)):
            estimator.fit(list(texts), y)
        trained = tuple(str(c) for c in estimator.classes_)
    return TrainedModel(version=version, labels=labels, multilabel=multilabel, estimator=estimator,
                        trained_classes=trained, n_examples=len(texts))


def warm_start_fit(pipeline: Pipeline, previous: TrainedModel | None, texts: list[str], y: list[str]) -> bool:
    """Fit the default ``pipeline`` from ``previous``'s coefficients; False (nothing fitted) when
    ``previous`` cannot seed it: absent, multi-label, another estimator, or other classes.

    The vocabulary changes at every retrain, so each coefficient column of an n-gram both
    vocabularies hold is copied to its new column and new n-grams start at zero.
    """
    if previous is None or previous.multilabel or not isinstance(previous.estimator, Pipeline):
        return False
    old_vectorizer = previous.estimator.named_steps.get("tfidf")
    old = previous.estimator.named_steps.get("clf")
    if not (isinstance(old_vectorizer, TfidfVectorizer) and isinstance(old, LogisticRegression)
            and hasattr(old, "coef_") and previous.trained_classes == tuple(str(c) for c in np.unique(y))):
        return False
    vectorizer, classifier = pipeline.named_steps["tfidf"], pipeline.named_steps["clf"]
    features = vectorizer.fit_transform(texts)
    shared = [(column, old_vectorizer.vocabulary_[term]) for term, column in vectorizer.vocabulary_.items()
              if term in old_vectorizer.vocabulary_]
    coef = np.zeros((old.coef_.shape[0], features.shape[1]))
    if shared:
        new_columns, old_columns = (np.array(part) for part in zip(*shared))
        coef[:, new_columns] = old.coef_[:, old_columns]
    classifier.set_params(warm_start=True)
    classifier.coef_, classifier.intercept_ = coef, old.intercept_.copy()
    classifier.fit(features, y)
    return True


def _multilabel_estimator(base: BaseEstimator) -> BaseEstimator:
    """One-vs-rest over the final step, keeping a shared vectoriser when ``base`` is a Pipeline."""
    base = clone(base)
    if isinstance(base, Pipeline):
        name, last = base.steps[-1]
        base.steps[-1] = (name, OneVsRestClassifier(last))
        return base
    return OneVsRestClassifier(base)
