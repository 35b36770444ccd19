"""The uncertain slice: a band sampled by uncertainty, with near duplicates suppressed."""

from __future__ import annotations

import numpy as np
import pytest

from selection.uncertain import select_uncertain


def random_embeddings(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def pick_rows(picks: list[tuple[int, dict]]) -> list[int]:
    return [row for row, _ in picks]


def test_band_factor_one_takes_plain_top_k():
    scores = np.linspace(0.0, 1.0, 50)
    rows = np.arange(50)
    picks = select_uncertain(
        scores, rows, random_embeddings(50), 5, np.random.default_rng(0), band_factor=1.0
    )
    assert sorted(pick_rows(picks)) == [45, 46, 47, 48, 49]


def test_uncertain_slice_is_not_just_the_extreme_top_k():
    scores = np.linspace(0.5, 1.0, 300)
    rows = np.arange(300)
    top_k, band = set(range(290, 300)), set(range(270, 300))
    outside_top_k = []
    for seed in range(40):
        picked = set(
            pick_rows(
                select_uncertain(
                    scores, rows, random_embeddings(300), 10, np.random.default_rng(seed)
                )
            )
        )
        assert picked <= band
        outside_top_k.append(len(picked - top_k) / 10)
    assert np.mean(outside_top_k) > 0.4


def test_more_uncertain_band_items_are_picked_more_often():
    scores = np.concatenate([np.full(100, 0.01), np.linspace(0.05, 1.0, 30)])
    rows = np.arange(130)
    counts = np.zeros(130)
    for seed in range(200):
        for row in pick_rows(
            select_uncertain(scores, rows, random_embeddings(130), 10, np.random.default_rng(seed))
        ):
            counts[row] += 1
    assert counts[120:].sum() > 2 * counts[100:110].sum()


def test_identical_ambiguous_rows_yield_at_most_one_pick():
    rng = np.random.default_rng(0)
    embeddings = np.vstack(
        [np.tile(rng.standard_normal(8), (30, 1)), rng.standard_normal((100, 8))]
    )
    scores = np.concatenate([np.full(30, 1.0), rng.uniform(0.5, 0.9, 100)])
    picks = select_uncertain(scores, np.arange(130), embeddings, 10, np.random.default_rng(1))
    assert len(picks) == 10
    assert sum(row < 30 for row in pick_rows(picks)) <= 1


def test_duplicates_are_kept_when_suppression_is_disabled():
    embeddings = np.ones((30, 4))
    picks = select_uncertain(
        np.full(30, 1.0), np.arange(30), embeddings, 5, np.random.default_rng(0), max_similarity=1.5
    )
    assert len(picks) == 5


def test_pool_of_duplicates_returns_a_single_item():
    picks = select_uncertain(
        np.full(6, 0.9), np.arange(6), np.ones((6, 4)), 2, np.random.default_rng(0)
    )
    assert len(picks) == 1


def test_duplicates_filling_the_band_push_the_search_deeper_into_the_ranking():
    embeddings = np.vstack([np.ones((6, 4)), np.eye(4)])
    scores = np.concatenate([np.full(6, 0.9), np.full(4, 0.5)])
    picks = select_uncertain(scores, np.arange(10), embeddings, 2, np.random.default_rng(0))
    assert len(picks) == 2 and sum(row < 6 for row in pick_rows(picks)) == 1


def test_reason_reports_uncertainty_and_band_rank():
    scores = np.array([0.2, 0.9, 0.5])
    ((row, reason),) = select_uncertain(
        scores,
        np.array([10, 11, 12]),
        random_embeddings(13),
        1,
        np.random.default_rng(0),
        band_factor=1.0,
    )
    assert (row, reason) == (11, {"uncertainty": 0.9, "band_rank": 1})


def test_band_factor_below_one_is_rejected():
    with pytest.raises(ValueError, match="band_factor"):
        select_uncertain(
            np.ones(3), np.arange(3), np.ones((3, 2)), 1, np.random.default_rng(0), band_factor=0.5
        )


def test_same_seed_gives_same_picks():
    scores = np.random.default_rng(3).uniform(size=200)
    args = (scores, np.arange(200), random_embeddings(200), 12)
    assert select_uncertain(*args, np.random.default_rng(7)) == select_uncertain(
        *args, np.random.default_rng(7)
    )
