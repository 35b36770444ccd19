"""The queue writer's write plan, against a stand-in gateway that records every call: only
changed tasks are written, and every tag lands before the first clear, whatever the concurrency.
(The same writer against a real Label Studio: ``tests/test_e2e_queue_writer.py``.)"""
from __future__ import annotations

import threading
from typing import Any

import pytest

from backend.labelstudio.gateway import StoredCounts
from backend.labelstudio.queue_writer import QUEUE_FIELDS, QUEUE_VIEW, RANK_FIELD, StaleBatchError, write_queue
from selection.batch import BatchItem


class RecordingGateway:
    """Project 1 with tasks 1..20 and the queue tab; the tab lists tagged tasks, as Label Studio does."""

    project_id = 1

    def __init__(self):
        self.data: dict[int, dict[str, Any]] = {i: {"text": f"task {i}"} for i in range(1, 21)}
        self.writes: list[tuple[int, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def tabs(self, outage=None):
        return [{"id": 7, "data": dict(QUEUE_VIEW)}]

    def create_tab(self, data, outage=None):
        raise AssertionError("the tab exists")

    def update_tab(self, tab_id, data, outage=None):
        raise AssertionError("the tab is as it should be")

    def tab_tasks_data(self, tab_id, page_size, outage=None):
        return {i: dict(d) for i, d in self.data.items() if RANK_FIELD in d}

    def tasks_data(self, task_ids, chunk, outage=None):
        return {i: dict(self.data[i]) for i in task_ids if i in self.data}

    def update_data(self, task_id, data, outage=None):
        with self.lock:
            self.writes.append((task_id, data))
            self.data[task_id] = dict(data)

    def annotation_counts(self, task_ids, chunk, outage=None):
        return {i: StoredCounts(total=0, cancelled=0, annotations=0) for i in task_ids if i in self.data}


class AnnotatedDuringItsWrite(RecordingGateway):
    """Task 3 is annotated while its tags are written, and the write's whole-row save puts back
    its counters from before the annotation, as Label Studio's ``PATCH`` does."""

    def __init__(self):
        super().__init__()
        self.stored = {3: (0, 0, False)}
        self.restored: list[tuple[int, int, int, bool]] = []

    def annotation_counts(self, task_ids, chunk, outage=None):
        counts = super().annotation_counts(task_ids, chunk, outage)
        if 3 in counts:
            total, cancelled, _ = self.stored[3]
            counts[3] = StoredCounts(total=total, cancelled=cancelled, annotations=1)
        return counts

    def tasks_with_annotations(self, task_ids, chunk, outage=None):
        return [{"id": i, "overlap": 1, "total_annotations": self.stored[i][0], "cancelled_annotations": self.stored[i][1],
                 "is_labeled": self.stored[i][2], "annotations": [{"id": 9, "was_cancelled": False, "completed_by": 2,
                                                                   "result": []}]}
                for i in task_ids]

    def ignores_skipped(self, outage=None):
        return False

    def set_counters(self, task_id, total, cancelled, is_labeled, outage=None):
        self.restored.append((task_id, total, cancelled, is_labeled))
        self.stored[task_id] = (total, cancelled, is_labeled)


def batch(task_ids: list[int]) -> list[BatchItem]:
    return [BatchItem(task_id=t, slice="uncertain", rank=r, reason={}) for r, t in enumerate(task_ids, start=1)]


def test_tasks_whose_tags_did_not_change_are_not_written():
    gateway = RecordingGateway()
    write_queue(gateway, batch([1, 2, 3, 4]), cycle=1)
    gateway.writes.clear()

    result = write_queue(gateway, batch([1, 2, 3, 4]), cycle=1)

    assert gateway.writes == [] and result.cleared == 0


@pytest.mark.parametrize("concurrency", [1, 4])
def test_every_tag_is_written_before_the_first_clear(concurrency):
    gateway = RecordingGateway()
    write_queue(gateway, batch([1, 2, 3, 4, 5, 6]), cycle=1)
    gateway.writes.clear()

    result = write_queue(gateway, batch([4, 10, 11, 12, 13]), cycle=2, previous=[1, 2, 3, 4, 5, 6],
                         concurrency=concurrency)

    kinds = ["tag" if RANK_FIELD in data else "clear" for _, data in gateway.writes]
    assert kinds == ["tag"] * 5 + ["clear"] * 5
    assert result.cleared == 5 and {t for t, _ in gateway.writes} == {1, 2, 3, 4, 5, 6, 10, 11, 12, 13}
    assert all(not set(QUEUE_FIELDS) & gateway.data[t].keys() for t in (1, 2, 3, 5, 6))


def test_a_batch_naming_a_task_the_project_lacks_writes_nothing():
    gateway = RecordingGateway()
    with pytest.raises(StaleBatchError, match="has no task"):
        write_queue(gateway, batch([1, 99]), cycle=1)
    assert gateway.writes == []


def test_counters_a_write_overwrote_are_restored_once():
    gateway = AnnotatedDuringItsWrite()

    result = write_queue(gateway, batch([1, 2, 3, 4]), cycle=1)

    assert gateway.restored == [(3, 1, 0, True)] and result.repaired == 1
