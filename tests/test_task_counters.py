"""Counters as Label Studio computes them, for restoring those a task update overwrote
(``backend/labelstudio/task_counters.py``; against a real Label Studio: ``tests/test_e2e_gateway.py``)."""
from __future__ import annotations

import pytest

from backend.labelstudio.gateway import StoredCounts, stored_counts
from backend.labelstudio.task_counters import counters_of

DONE = {"was_cancelled": False, "result": [{"value": {"choices": ["a"]}}]}
SKIPPED = {"was_cancelled": True, "result": []}


def by(who: int, annotation: dict) -> dict:
    return {**annotation, "completed_by": {"id": who}}


@pytest.mark.parametrize(("annotations", "overlap", "ignore_skipped", "expected"), [
    ([], 1, False, (0, 0, False)),
    ([by(1, DONE)], 1, False, (1, 0, True)),
    ([by(1, SKIPPED)], 1, False, (0, 1, False)),
    ([by(1, SKIPPED)], 1, True, (0, 1, True)),  # "ignore skipped": a skip completes the task
    ([by(1, DONE), by(1, DONE)], 2, False, (2, 0, False)),  # overlap counts distinct annotators
    ([by(1, DONE), by(2, DONE)], 2, False, (2, 0, True)),
    ([by(1, {"was_cancelled": False, "result": None})], 1, False, (1, 0, False)),  # no result: not finished
    ([{**DONE, "completed_by": 4}], 1, False, (1, 0, True)),  # task lists give the annotator's id
])
def test_counters_follow_label_studio(annotations, overlap, ignore_skipped, expected):
    assert counters_of(annotations, overlap, ignore_skipped) == expected


@pytest.mark.parametrize(("listed", "expected"), [
    ({"total_annotations": 1, "cancelled_annotations": 1, "annotations_ids": "6,7"}, StoredCounts(1, 1, 2)),
    ({"total_annotations": 0, "cancelled_annotations": 0, "annotations_ids": "2, 4, 3"}, StoredCounts(0, 0, 3)),
    ({"total_annotations": 0, "cancelled_annotations": 0, "annotations_ids": ""}, StoredCounts(0, 0, 0)),
    ({}, StoredCounts(0, 0, 0)),
])
def test_stored_counts_read_sqlite_and_postgresql_id_lists(listed, expected):
    assert stored_counts(listed) == expected


def test_counts_are_stale_when_an_annotation_is_not_counted():
    assert StoredCounts(total=0, cancelled=0, annotations=1).stale
    assert not StoredCounts(total=1, cancelled=1, annotations=2).stale
