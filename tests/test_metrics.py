"""Loop metrics: hand-computed values, and scikit-learn wherever it has the same metric."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, precision_recall_fscore_support

from selection.errors import InvalidArrayError
from selection.metrics import (
    accuracy,
    as_indicator,
    bootstrap_interval,
    class_precision_recall,
    cohens_kappa,
    cost_per_point,
    fleiss_kappa,
    gain_per_label,
    macro_f1,
    percent_agreement,
    rating_counts,
    weighted_slope,
    wilson_interval,
)

LABELS = ("a", "b", "c", "d")

#: Cohen (1960)-style worked example (Wikipedia, "Cohen's kappa"): 50 items, yes/yes 20,
#: yes/no 5, no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = 0.4.
COHEN_A = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
COHEN_B = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15

#: Fleiss (1971) worked example (Wikipedia, "Fleiss' kappa"): 10 items, 14 raters, 5 categories.
FLEISS = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])

single_labels = st.lists(st.integers(0, 3), min_size=1, max_size=40)


def one_hot(indices) -> np.ndarray:
    return np.eye(len(LABELS), dtype=bool)[np.asarray(indices)]


def test_as_indicator_marks_known_labels_and_drops_unknown_ones():
    matrix = as_indicator([("a",), ("b", "d"), ("zzz",)], LABELS)
    assert matrix.tolist() == [[True, False, False, False], [False, True, False, True], [False] * 4]


def test_cohens_kappa_matches_the_worked_example():
    assert cohens_kappa(COHEN_A, COHEN_B) == pytest.approx(0.4)


def test_cohens_kappa_is_nan_when_both_annotators_always_pick_one_category():
    assert math.isnan(cohens_kappa([2, 2, 2], [2, 2, 2]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=60))
def test_cohens_kappa_matches_scikit_learn(pairs):
    first, second = zip(*pairs)
    ours = cohens_kappa(first, second)
    if math.isnan(ours):
        assert len(set(first) | set(second)) == 1
    else:
        assert ours == pytest.approx(cohen_kappa_score(first, second))


def test_fleiss_kappa_matches_the_worked_example():
    # P-bar = 0.37802, P_e = 0.21303 -> kappa = 0.20993
    assert fleiss_kappa(FLEISS) == pytest.approx(0.20993, abs=5e-5)


def test_fleiss_kappa_with_two_raters_is_scotts_pi():
    counts = rating_counts(list(zip(COHEN_A, COHEN_B)), 2)
    # pooled shares: yes 55/100, no 45/100 -> p_e = 0.505; pi = (0.7 - 0.505) / 0.495
    assert fleiss_kappa(counts) == pytest.approx((0.7 - 0.505) / 0.495)


def test_fleiss_kappa_accepts_items_with_different_numbers_of_ratings():
    counts = np.array([[2, 0], [0, 3], [1, 1]])
    # per-item agreement 1, 1, 0 -> 2/3; shares 3/7 and 4/7 -> p_e = 25/49
    expected = (2 / 3 - 25 / 49) / (1 - 25 / 49)
    assert fleiss_kappa(counts) == pytest.approx(expected)


def test_percent_agreement_of_two_annotators_is_the_share_of_items_they_agree_on():
    counts = rating_counts(list(zip(COHEN_A, COHEN_B)), 2)
    assert percent_agreement(counts) == pytest.approx(0.7)


def test_percent_agreement_of_three_annotators_averages_pairs_per_item():
    # item 1: all agree (1); item 2: one pair of three agrees (1/3)
    assert percent_agreement(np.array([[3, 0], [2, 1]])) == pytest.approx((1 + 1 / 3) / 2)


def test_agreement_refuses_items_rated_once():
    with pytest.raises(InvalidArrayError, match="at least two ratings"):
        fleiss_kappa(np.array([[1, 0], [1, 1]]))


def test_wilson_interval_matches_hand_computation():
    # 8 of 10, z = 1.95996: centre 0.71674, half-width 0.22655
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.49016, 0.94330), abs=5e-5)


def test_wilson_interval_stays_inside_zero_one_at_the_extremes():
    assert wilson_interval(0, 3)[0] == 0.0
    assert wilson_interval(3, 3)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_wilson_interval_narrows_as_the_control_sample_grows():
    small, large = wilson_interval(4, 5), wilson_interval(80, 100)
    assert large[1] - large[0] < small[1] - small[0]


@settings(max_examples=100, deadline=None)
@given(single_labels, st.data())
def test_accuracy_and_macro_f1_match_scikit_learn_for_single_label(truth, data):
    predicted = data.draw(st.lists(st.integers(0, 3), min_size=len(truth), max_size=len(truth)))
    y_true, y_pred = one_hot(truth), one_hot(predicted)
    assert float(accuracy(y_true, y_pred)) == pytest.approx(accuracy_score(truth, predicted))
    assert float(macro_f1(y_true, y_pred)) == pytest.approx(f1_score(truth, predicted, average="macro"))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.data())
def test_multilabel_quality_matches_scikit_learn_over_the_classes_that_occur(n, data):
    cells = st.lists(st.booleans(), min_size=n * 4, max_size=n * 4)
    y_true = np.array(data.draw(cells)).reshape(n, 4)
    y_pred = np.array(data.draw(cells)).reshape(n, 4)
    assert float(accuracy(y_true, y_pred)) == pytest.approx(accuracy_score(y_true, y_pred))
    present = np.flatnonzero((y_true | y_pred).any(axis=0))
    if present.size:
        expected = f1_score(y_true, y_pred, average="macro", labels=present, zero_division=0)
        assert float(macro_f1(y_true, y_pred)) == pytest.approx(expected)
    else:
        assert math.isnan(float(macro_f1(y_true, y_pred)))


def test_class_precision_recall_matches_scikit_learn_and_marks_undefined_as_nan():
    truth, predicted = [0, 0, 1, 1, 2], [0, 1, 1, 2, 0]
    precision, recall, support = class_precision_recall(one_hot(truth), one_hot(predicted))
    expected = precision_recall_fscore_support(truth, predicted, labels=[0, 1, 2], zero_division=0)
    assert precision[:3] == pytest.approx(expected[0])
    assert recall[:3] == pytest.approx(expected[1])
    assert support.tolist() == [2, 2, 1, 0]
    assert math.isnan(precision[3]) and math.isnan(recall[3])


def test_quality_functions_accept_a_leading_resample_dimension():
    y_true = one_hot([[0, 1, 2], [0, 0, 0]])
    y_pred = one_hot([[0, 1, 1], [0, 0, 0]])
    assert accuracy(y_true, y_pred).tolist() == pytest.approx([2 / 3, 1.0])
    assert macro_f1(y_true, y_pred).tolist() == pytest.approx([(1 + 2 / 3 + 0) / 3, 1.0])


def test_bootstrap_interval_is_reproducible_and_contains_the_estimate():
    truth, predicted = one_hot([0, 1, 2, 3, 0, 1, 2, 3]), one_hot([0, 1, 2, 0, 0, 1, 3, 3])
    first = bootstrap_interval(truth, predicted, macro_f1, np.random.default_rng(7))
    again = bootstrap_interval(truth, predicted, macro_f1, np.random.default_rng(7))
    assert first == again
    assert first[0] <= float(macro_f1(truth, predicted)) <= first[1]


def test_bootstrap_interval_of_a_perfect_sample_is_a_point():
    y = one_hot([0, 1, 2])
    assert bootstrap_interval(y, y, accuracy, np.random.default_rng(0)) == (1.0, 1.0)


def test_gain_per_label_is_quality_change_over_labels_spent():
    assert gain_per_label(0.70, 0.75, 50) == pytest.approx(0.001)
    assert gain_per_label(0.75, 0.70, 25) == pytest.approx(-0.002)


def test_gain_per_label_is_none_without_labels_or_a_measurement():
    assert gain_per_label(0.7, 0.8, 0) is None
    assert gain_per_label(None, 0.8, 10) is None
    assert gain_per_label(0.7, math.nan, 10) is None


def test_cost_per_point_divides_cost_by_percentage_points_gained():
    # 120 minutes for 0.70 -> 0.75: 5 points -> 24 minutes per point
    assert cost_per_point(120.0, 0.70, 0.75) == pytest.approx(24.0)


def test_cost_per_point_is_none_when_quality_did_not_rise():
    assert cost_per_point(120.0, 0.75, 0.75) is None
    assert cost_per_point(120.0, 0.75, 0.70) is None


def test_mismatched_shapes_raise_a_named_error():
    with pytest.raises(InvalidArrayError, match="one shape"):
        accuracy(one_hot([0, 1]), one_hot([0]))
    with pytest.raises(InvalidArrayError, match="same items"):
        cohens_kappa([0, 1], [0])


def test_weighted_slope_matches_numpy_polyfit_with_square_root_weights():
    x, y, n = [100, 200, 300, 400], [0.5, 0.62, 0.66, 0.8], [5, 2, 10, 4]
    expected = np.polyfit(x, y, 1, w=np.sqrt(n))[0]
    assert weighted_slope(x, y, n) == pytest.approx(expected)


def test_weighted_slope_of_exact_line_is_its_slope_and_needs_two_points():
    assert weighted_slope([0, 10, 20], [0.5, 0.6, 0.7], [1, 3, 1]) == pytest.approx(0.01)
    assert weighted_slope([10, 10], [0.5, 0.6], [1, 1]) is None
