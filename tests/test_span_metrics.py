"""Span figures: exact-match entity scores (as seqeval computes them), agreement, coverage, cost."""
from __future__ import annotations

import math

import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score

from backend.model.span_tokens import spans_to_tags, tokenize
from selection.span_metrics import (
    entity_f1_interval,
    entity_scores,
    pairwise_span_agreement,
    type_coverage,
)

TEXT = "Maria Lopez from Acme Corp flew to Berlin on Monday"
TRUTH = ((0, 11, "PER"), (17, 26, "ORG"), (35, 41, "LOC"))
GUESS = ((0, 5, "PER"), (17, 26, "ORG"), (35, 41, "ORG"), (45, 51, "DATE"))


def test_entity_scores_count_only_exact_start_end_and_type():
    scores = entity_scores([(TRUTH, GUESS)])
    assert scores["micro"]["precision"] == pytest.approx(1 / 4)
    assert scores["micro"]["recall"] == pytest.approx(1 / 3)
    assert scores["per_type"]["ORG"]["f1"] == pytest.approx(2 / 3)
    assert scores["per_type"]["PER"]["f1"] == 0.0


def test_entity_scores_equal_seqeval_on_shared_tokens():
    offsets = tokenize(TEXT)
    pairs = [(TRUTH, GUESS), (TRUTH, TRUTH), (TRUTH[:1], ())]
    y_true = [spans_to_tags(offsets, t) for t, _ in pairs]
    y_pred = [spans_to_tags(offsets, p) for _, p in pairs]
    ours = entity_scores(pairs)
    assert ours["micro"]["f1"] == pytest.approx(f1_score(y_true, y_pred))
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    for label in ("PER", "ORG", "LOC"):
        assert ours["per_type"][label]["f1"] == pytest.approx(report[label]["f1-score"])


def test_entity_f1_interval_brackets_the_point_figure_and_is_seeded():
    pairs = [(TRUTH, GUESS), (TRUTH, TRUTH)] * 10
    low, high = entity_f1_interval(pairs, np.random.default_rng(1))
    point = entity_scores(pairs)["micro"]["f1"]
    assert low <= point <= high
    assert (low, high) == entity_f1_interval(pairs, np.random.default_rng(1))
    assert all(math.isnan(x) for x in entity_f1_interval([], np.random.default_rng(1)))


def test_pairwise_agreement_is_exact_match_f1_over_annotator_pairs():
    found = pairwise_span_agreement([[(1, TRUTH), (2, GUESS)], [(1, TRUTH)]])
    assert found == {"f1": pytest.approx(2 * 1 / 7), "pairs": 1, "tasks": 1}
    assert math.isnan(pairwise_span_agreement([[(1, TRUTH)]])["f1"])


def test_coverage_lists_every_configured_type():
    assert type_coverage(["PER", "ORG", "DATE"], [TRUTH, GUESS]) == {"PER": 2, "ORG": 3, "DATE": 1}
