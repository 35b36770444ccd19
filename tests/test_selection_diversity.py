"""The diverse slice: typical members of dense regions away from labelled and chosen items."""

from __future__ import annotations

import numpy as np

from selection.diversity import select_diverse

D = 8


def blob(centre_axis: int, n: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    centre = np.zeros(D)
    centre[centre_axis] = 1.0
    return (centre + noise * rng.standard_normal((n, D))).astype(np.float32)


def picked_rows(picks: list[tuple[int, dict]]) -> list[int]:
    return [row for row, _ in picks]


def test_diverse_picks_come_from_the_cluster_nobody_labelled():
    rng = np.random.default_rng(0)
    pool = np.vstack([blob(0, 50, rng), blob(1, 50, rng)])  # rows 0-49: A, 50-99: B
    labelled = blob(0, 20, rng)
    picks = select_diverse(
        pool, np.arange(100), labelled, np.array([], dtype=int), 3, np.random.default_rng(0)
    )
    assert all(row >= 50 for row in picked_rows(picks))


def test_items_already_in_the_batch_count_as_covered():
    rng = np.random.default_rng(1)
    pool = np.vstack([blob(0, 50, rng), blob(1, 50, rng)])
    picks = select_diverse(
        pool, np.arange(1, 100), np.empty((0, D)), np.array([0]), 1, np.random.default_rng(0)
    )
    assert picked_rows(picks)[0] >= 50


def test_successive_picks_open_new_clusters():
    rng = np.random.default_rng(2)
    pool = np.vstack([blob(axis, 30, rng) for axis in range(3)])
    picks = select_diverse(
        pool, np.arange(90), np.empty((0, D)), np.array([], dtype=int), 3, np.random.default_rng(0)
    )
    assert sorted(row // 30 for row in picked_rows(picks)) == [0, 1, 2]


def test_reason_carries_distance_and_cluster_index():
    rng = np.random.default_rng(3)
    pool = blob(0, 10, rng)
    picks = select_diverse(
        pool, np.arange(10), blob(1, 5, rng), np.array([], dtype=int), 2, np.random.default_rng(0)
    )
    reasons = [reason for _, reason in picks]
    assert [reason["cluster"] for reason in reasons] == [0, 1]
    assert 0.0 < reasons[0]["distance"] <= 2.0 and reasons[1]["distance"] <= reasons[0]["distance"]


def test_first_pick_with_nothing_covered_is_seeded_and_has_no_distance():
    pool = np.random.default_rng(4).standard_normal((20, D))
    picks = select_diverse(
        pool, np.arange(20), np.empty((0, D)), np.array([], dtype=int), 1, np.random.default_rng(9)
    )
    assert picks[0][1]["distance"] is None
    assert picks == select_diverse(
        pool, np.arange(20), np.empty((0, D)), np.array([], dtype=int), 1, np.random.default_rng(9)
    )


def test_candidate_subsample_still_fills_every_slot():
    pool = np.random.default_rng(5).standard_normal((500, D))
    picks = select_diverse(
        pool,
        np.arange(500),
        np.empty((0, D)),
        np.array([], dtype=int),
        40,
        np.random.default_rng(0),
        max_candidates=10,
    )
    assert len(set(picked_rows(picks))) == 40


def test_never_returns_more_than_the_candidates():
    pool = np.random.default_rng(6).standard_normal((5, D))
    picks = select_diverse(
        pool, np.arange(5), np.empty((0, D)), np.array([], dtype=int), 9, np.random.default_rng(0)
    )
    assert sorted(picked_rows(picks)) == [0, 1, 2, 3, 4]


def test_labelled_subsample_bound_keeps_coverage_of_a_well_labelled_cluster():
    rng = np.random.default_rng(7)
    pool = np.vstack([blob(0, 50, rng), blob(1, 50, rng)])
    labelled = blob(0, 2000, rng)
    picks = select_diverse(
        pool,
        np.arange(100),
        labelled,
        np.array([], dtype=int),
        2,
        np.random.default_rng(0),
        max_labelled=50,
    )
    # Both picks from the unlabelled blob: the well-labelled one stays covered through 50 of
    # its 2,000 labels (a third pick is a within-blob choice that typicality decides).
    assert all(row >= 50 for row in picked_rows(picks))


def test_a_dense_uncovered_region_beats_farther_outliers():
    rng = np.random.default_rng(11)
    dense = blob(1, 60, rng)  # rows 0-59: a topic nobody labelled
    outliers = np.eye(D, dtype=np.float32)[[2, 3, 4]] * -1.0  # rows 60-62: lone, far points
    pool = np.vstack([dense, outliers])
    labelled = blob(0, 30, rng)
    picks = select_diverse(
        pool, np.arange(63), labelled, np.array([], dtype=int), 2, np.random.default_rng(0)
    )
    assert picked_rows(picks)[0] < 60


def test_uncertainty_scores_lean_the_pick_within_a_region():
    rng = np.random.default_rng(12)
    pool = blob(1, 80, rng)
    scores = np.zeros(80)
    scores[40:] = 1.0
    labelled = blob(0, 10, rng)
    picks = select_diverse(
        pool,
        np.arange(80),
        labelled,
        np.array([], dtype=int),
        6,
        np.random.default_rng(0),
        scores=scores,
    )
    assert sum(row >= 40 for row in picked_rows(picks)) >= 4


def test_reason_carries_the_typicality_percentile():
    rng = np.random.default_rng(13)
    pool = blob(1, 20, rng)
    picks = select_diverse(
        pool, np.arange(20), blob(0, 5, rng), np.array([], dtype=int), 2, np.random.default_rng(0)
    )
    assert all(0.0 < reason["typicality"] <= 1.0 for _, reason in picks)
