"""Sequence uncertainty measures: small pure functions over best-path log-probabilities and marginals."""
from __future__ import annotations

import math

import numpy as np
import pytest

from selection.errors import InvalidArrayError, UnknownMeasureError
from selection.sequence_uncertainty import (
    least_confidence,
    max_entropy,
    mean_entropy,
    mnlp,
    sequence_uncertainty,
    token_entropy,
    total_token_entropy,
)


def test_least_confidence_is_one_minus_the_path_probability():
    assert least_confidence(np.log([0.9, 0.25]), np.array([3, 3])) == pytest.approx([0.1, 0.75])


def test_mnlp_normalises_by_length_so_long_sentences_are_not_favoured():
    # each token 0.9 sure: 2 tokens -> path 0.81, 20 tokens -> path 0.12
    logp = np.array([2 * math.log(0.9), 20 * math.log(0.9)])
    lengths = np.array([2, 20])
    assert mnlp(logp, lengths) == pytest.approx([0.1, 0.1])
    lc = least_confidence(logp, lengths)
    assert lc[1] > lc[0]


def test_empty_sentence_has_nothing_to_be_unsure_about():
    assert mnlp(np.array([0.0]), np.array([0]))[0] == 0.0
    assert least_confidence(np.array([0.0]), np.array([0]))[0] == 0.0
    assert mean_entropy([np.zeros((0, 3))])[0] == 0.0


def test_token_entropy_is_zero_when_sure_and_one_when_uniform():
    assert token_entropy(np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])) == pytest.approx([0.0, 1.0])


def test_mean_and_max_entropy_read_the_doubtful_token():
    sentence = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])
    assert mean_entropy([sentence])[0] == pytest.approx(0.25)
    assert max_entropy([sentence])[0] == pytest.approx(1.0)


def test_total_token_entropy_grows_with_length():
    token = np.array([[0.5, 0.5]])
    assert total_token_entropy([np.repeat(token, 2, 0), np.repeat(token, 6, 0)]) == pytest.approx(
        [2 * math.log(2), 6 * math.log(2)])


def test_bounded_measures_stay_in_the_unit_interval():
    rng = np.random.default_rng(0)
    marginals = [rng.dirichlet(np.ones(5), size=n) for n in (1, 4, 9)]
    logp = np.log(rng.uniform(0.01, 1.0, size=3))
    for measure in ("least_confidence", "mnlp", "mean_entropy", "max_entropy"):
        u = sequence_uncertainty(logp, np.array([len(m) for m in marginals]), measure, marginals)
        assert u.shape == (3,) and ((u >= 0) & (u <= 1)).all(), measure


def test_unknown_measure_and_bad_inputs_are_named():
    with pytest.raises(UnknownMeasureError, match="mnlp"):
        sequence_uncertainty(np.zeros(1), np.ones(1), "margin")
    with pytest.raises(InvalidArrayError):
        sequence_uncertainty(np.zeros(2), np.ones(1), "mnlp")
    with pytest.raises(InvalidArrayError):
        sequence_uncertainty(np.zeros(2), np.ones(2), "mean_entropy", [np.ones((1, 2))])
    with pytest.raises(ValueError, match="marginals"):
        sequence_uncertainty(np.zeros(1), np.ones(1), "max_entropy")
    with pytest.raises(ValueError, match="<= 0"):
        mnlp(np.array([0.5]), np.array([1]))
