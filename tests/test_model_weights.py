"""The default model's class weights: rare classes boosted, but boundedly."""

from __future__ import annotations

import numpy as np

from backend.model import fit_model, prior_balanced_weights


def test_a_class_with_one_label_weighs_at_most_twice_a_class_of_mean_size():
    y = np.array(["big"] * 700 + ["mean"] * 250 + ["small"] * 49 + ["rare"])  # mean count 250
    weights = prior_balanced_weights(y)
    rare, mean, big = weights[-1], weights[700], weights[0]
    assert rare <= 2.0 * mean  # "balanced" would give 250x
    assert rare > mean > big  # rare classes are still boosted


def test_weights_sum_to_the_number_of_samples_like_balanced_weights():
    y = np.array([0] * 7 + [1] * 30 + [2] * 2)
    assert np.isclose(prior_balanced_weights(y).sum(), len(y))


def test_equal_classes_get_equal_unit_weights():
    assert np.allclose(prior_balanced_weights(np.array([1, 2, 1, 2])), 1.0)


def test_the_default_model_is_repeatable_on_the_same_labels():
    texts = [f"move money {i}" for i in range(20)] + [f"lost card {i}" for i in range(20)]
    targets = [("transfer",)] * 20 + [("card",)] * 20
    first, second = (
        fit_model(texts, targets, labels=("card", "transfer"), multilabel=False, version="v")
        for _ in range(2)
    )
    assert np.array_equal(first.predict_proba(texts), second.predict_proba(texts))
