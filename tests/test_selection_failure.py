"""The failure slice: flagged production failures first, then neighbours of overrides."""

from __future__ import annotations

import numpy as np

from selection.failure import accepted_overrides, failure_candidates

IDS = np.arange(100, 110)  # selectable task ids, sorted
ROWS = np.arange(10)
EMBEDDINGS = np.eye(10, dtype=np.float32)


def candidates(
    flagged=(),
    labelled_embeddings=np.empty((0, 10)),
    overridden=np.empty(0, dtype=bool),
    limit=10,
    **kwargs,
):
    labelled_ids = np.arange(900, 900 + len(labelled_embeddings))
    return failure_candidates(
        IDS,
        ROWS,
        EMBEDDINGS,
        flagged,
        labelled_ids,
        labelled_embeddings,
        overridden,
        limit,
        np.random.default_rng(0),
        **kwargs,
    )


def test_flagged_tasks_come_first_in_flag_order_without_repeats():
    ranked = candidates(flagged=[105, 102, 105])
    assert ranked == [(5, {"source": "flagged"}), (2, {"source": "flagged"})]


def test_flagged_tasks_outside_the_pool_are_ignored():
    assert candidates(flagged=[42, 101]) == [(1, {"source": "flagged"})]


def test_without_overrides_only_flagged_tasks_are_candidates():
    no_override = np.eye(10)[:2]
    assert candidates(
        flagged=[103], labelled_embeddings=no_override, overridden=np.array([False, False])
    ) == [(3, {"source": "flagged"})]


def test_override_neighbours_are_ranked_by_cosine_similarity():
    labelled = np.zeros((1, 10))
    labelled[0, [4, 7]] = [2.0, 1.0]  # closest to row 4, then row 7
    ranked = candidates(labelled_embeddings=labelled, overridden=np.array([True]), limit=2)
    assert [row for row, _ in ranked] == [4, 7]
    assert ranked[0][1] == {
        "source": "override",
        "nearest_labelled": 900,
        "similarity": ranked[0][1]["similarity"],
    }
    assert ranked[0][1]["similarity"] > ranked[1][1]["similarity"]


def test_override_reason_names_the_nearest_overridden_task():
    labelled = np.eye(10)[[2, 6]]
    ranked = candidates(labelled_embeddings=labelled, overridden=np.array([True, True]), limit=2)
    assert {row: reason["nearest_labelled"] for row, reason in ranked} == {2: 900, 6: 901}


def test_flagged_tasks_are_not_repeated_as_override_neighbours():
    labelled = np.eye(10)[[3]]
    ranked = candidates(flagged=[103], labelled_embeddings=labelled, overridden=np.array([True]))
    assert [row for row, _ in ranked].count(3) == 1


def test_ranking_stops_at_the_limit():
    labelled = np.ones((1, 10))
    assert (
        len(
            candidates(
                flagged=[100, 101],
                labelled_embeddings=labelled,
                overridden=np.array([True]),
                limit=4,
            )
        )
        == 4
    )


def test_candidate_count_does_not_depend_on_embedding_values():
    overridden = np.array([True])
    near = candidates(labelled_embeddings=np.ones((1, 10)), overridden=overridden)
    far = candidates(labelled_embeddings=-np.ones((1, 10)), overridden=overridden)
    assert len(near) == len(far)


def test_large_pools_are_scanned_through_a_bounded_subsample():
    labelled = np.ones((1, 10))
    ranked = candidates(labelled_embeddings=labelled, overridden=np.array([True]), max_candidates=3)
    assert len(ranked) == 3


def _near_copies_of_one_override():
    """Rows 0-2 lie close to the single overridden item (row 0 closest), the rest far away."""
    embeddings = np.eye(10, dtype=np.float32)
    embeddings[1] = [0.9, 0.44, 0, 0, 0, 0, 0, 0, 0, 0]
    embeddings[2] = [0.8, 0, 0.6, 0, 0, 0, 0, 0, 0, 0]
    reference = np.zeros((1, 10))
    reference[0, 0] = 1.0
    return embeddings, reference


def _filtered(embeddings, reference, scores, **kwargs):
    return failure_candidates(
        IDS, ROWS, embeddings, (), np.array([900]), reference, np.array([True]), 3,
        np.random.default_rng(0), scores=scores, **kwargs,
    )


def test_override_neighbours_the_model_is_sure_of_are_dropped():
    embeddings, reference = _near_copies_of_one_override()
    assert _filtered(embeddings, reference, scores=np.full(10, 0.1)) == []


def test_override_neighbours_the_model_is_unsure_of_are_kept():
    embeddings, reference = _near_copies_of_one_override()
    scores = np.full(10, 0.1)
    scores[2] = 0.9
    assert [row for row, _ in _filtered(embeddings, reference, scores=scores)] == [2]


def test_unsure_is_the_threshold_given_not_a_fixed_one():
    """``compose_batch`` passes the uncertain band's edge: 0.6 is unsure when the edge is 0.6,
    and not when the pool's uncertain band starts at 0.7."""
    embeddings, reference = _near_copies_of_one_override()
    scores = np.full(10, 0.1)
    scores[1] = 0.6
    assert [row for row, _ in _filtered(embeddings, reference, scores=scores, unsure=0.6)] == [1]
    assert _filtered(embeddings, reference, scores=scores, unsure=0.7) == []


def test_near_duplicate_override_neighbours_are_kept_once():
    embeddings, reference = _near_copies_of_one_override()
    embeddings[2] = embeddings[1]  # rows 1 and 2 are the same text
    picks = _filtered(embeddings, reference, scores=np.full(10, 0.9))
    rows = [row for row, _ in picks]
    assert 0 in rows and len({1, 2} & set(rows)) == 1


def test_an_override_the_retrained_model_rejects_on_its_own_item_is_not_followed():
    overridden = np.array([True, True, False, True])
    labels = np.array([0, 1, 1, -1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.9, 0.1], [0.9, 0.1]])  # item 1's label 1 is rejected
    assert accepted_overrides(overridden, labels, proba).tolist() == [True, False, False, True]


def test_without_labels_or_probabilities_every_override_is_followed():
    overridden = np.array([True, False])
    assert accepted_overrides(overridden, None, np.ones((2, 2))).tolist() == [True, False]
    assert accepted_overrides(overridden, np.array([1, 0]), None).tolist() == [True, False]
