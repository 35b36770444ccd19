"""Uncertainty measures: hand-computed values, edge cases and the [0, 1] contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from selection import uncertainty
from selection.errors import InvalidArrayError, UnknownMeasureError
from selection.uncertainty import (
    MEASURES,
    entropy,
    least_confidence,
    margin,
    uncertainty_scores,
)

SKEWED = np.array([[0.7, 0.2, 0.1]])


def test_measures_registry_has_the_three_documented_names():
    assert set(MEASURES) == {"margin", "entropy", "least_confidence"}


def test_margin_is_one_minus_gap_between_top_two():
    assert margin(SKEWED) == pytest.approx([0.5])


def test_entropy_is_shannon_entropy_over_log_k():
    # -(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1) / ln 3
    assert entropy(SKEWED) == pytest.approx([0.7298466991620974])


def test_least_confidence_is_rescaled_so_uniform_maps_to_one():
    # (1 - 0.7) * 3 / 2
    assert least_confidence(SKEWED) == pytest.approx([0.45])


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_uniform_rows_are_maximally_uncertain(name):
    assert MEASURES[name](np.full((2, 4), 0.25)) == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_one_hot_rows_are_certain(name):
    assert MEASURES[name](np.eye(3)) == pytest.approx([0.0, 0.0, 0.0])


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_single_class_gives_zeros(name):
    np.testing.assert_array_equal(MEASURES[name](np.ones((3, 1))), np.zeros(3))


def test_rows_not_summing_to_one_are_renormalised():
    # [2, 1, 1] is read as [0.5, 0.25, 0.25]
    unnormalised = np.array([[2.0, 1.0, 1.0]])
    assert margin(unnormalised) == pytest.approx([0.75])
    assert entropy(unnormalised) == pytest.approx([0.946394630357186])
    assert least_confidence(unnormalised) == pytest.approx([0.75])


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_all_zero_row_is_read_as_uniform(name):
    assert MEASURES[name](np.zeros((1, 3))) == pytest.approx([1.0])


def test_non_finite_probabilities_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        margin(np.array([[np.nan, 0.5]]))


def test_one_dimensional_proba_is_rejected_naming_the_array():
    with pytest.raises(InvalidArrayError, match="proba"):
        uncertainty_scores(np.array([0.2, 0.8]))


def test_unknown_measure_names_the_valid_choices():
    with pytest.raises(UnknownMeasureError, match="entropy.*least_confidence.*margin"):
        uncertainty_scores(SKEWED, "variance")


def test_unknown_measure_error_is_a_value_error():
    assert issubclass(UnknownMeasureError, ValueError)


def test_multilabel_margin_averages_binary_margins_per_label():
    # labels: p=0.9 -> 1 - |0.9 - 0.1| = 0.2; p=0.2 -> 1 - |0.2 - 0.8| = 0.4
    scores = uncertainty_scores(np.array([[0.9, 0.2]]), "margin", multilabel=True)
    assert scores == pytest.approx([0.3])


def test_multilabel_entropy_uses_binary_entropy_per_label():
    # labels: p=0.9 -> H2(0.9) = 0.4689955935892812; p=0.5 -> 1
    scores = uncertainty_scores(np.array([[0.9, 0.5]]), "entropy", multilabel=True)
    assert scores == pytest.approx([(0.46899559358928117 + 1.0) / 2])


def test_multilabel_single_label_is_still_a_binary_problem():
    scores = uncertainty_scores(np.array([[0.5], [1.0]]), "least_confidence", multilabel=True)
    assert scores == pytest.approx([1.0, 0.0])


def test_higher_score_means_closer_top_two_classes():
    scores = uncertainty_scores(np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]]))
    assert scores[0] < scores[1] < scores[2]


def test_scores_are_identical_when_computed_in_chunks(monkeypatch):
    proba = np.random.default_rng(0).dirichlet(np.ones(4), size=10)
    whole = uncertainty_scores(proba, "entropy")
    monkeypatch.setattr(uncertainty, "_CHUNK_ROWS", 3)
    np.testing.assert_allclose(uncertainty_scores(proba, "entropy"), whole)


@settings(max_examples=60, deadline=None)
@given(
    proba=arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(1, 6)),
        elements=st.floats(0.0, 10.0),
    ),
    name=st.sampled_from(sorted(MEASURES)),
    multilabel=st.booleans(),
)
def test_scores_lie_in_unit_interval_for_any_non_negative_input(proba, name, multilabel):
    if multilabel:
        proba = proba / 10.0
    scores = uncertainty_scores(proba, name, multilabel=multilabel)
    assert scores.shape == (proba.shape[0],)
    assert np.all((scores >= 0.0) & (scores <= 1.0))
