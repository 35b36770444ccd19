"""Overlap on control tasks, so agreement is always measured on a random sample.

With ``control_overlap: N`` in the model connection's extra params, every control task of a
new cycle gets Label Studio's own per-task ``overlap = N``: Label Studio then keeps the task
unfinished (``is_labeled`` false) and serves it to other annotators until N of them labelled
it. ``PATCH /api/tasks/<id>`` accepts ``overlap`` and ``is_labeled`` (Label Studio 1.23 does
not recompute ``is_labeled`` when only ``overlap`` changes, so we send both, which also covers
a task someone labelled before the overlap was set).

A queue write clears the tags of every unlabelled task outside the new batch, and a labelled
task is never queued again, so a control task that one annotator labelled would drop out of
the tab before the second got to it. Such tasks are *carried over*: their tags are moved to
the newest cycle with rank 0, so the tab lists them first to annotators who have not labelled
them yet (Label Studio does not serve a task twice to the same annotator).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from backend.labelstudio.errors import LabelStudioRefused
from backend.labelstudio.gateway import LabelStudioGateway
from backend.labelstudio.queue_writer import CYCLE_FIELD, READ_CHUNK, queue_tags
from backend.labelstudio.task_counters import counters_of, repair_counters
from backend.loop.queue_record import QueueRecord
from backend.measure.cycles_db import CyclesDB
from backend.measure.measurement import AnnotatedTask

logger = logging.getLogger(__name__)


@contextmanager
def skipping_deleted(project_id: int, task_id: int) -> Iterator[None]:
    """A task deleted since it was queued is skipped; other refusals propagate (and are retried)."""
    try:
        yield
    except LabelStudioRefused as exc:
        if exc.status != 404:
            raise
        logger.info("project %s: task %s was deleted; no overlap for it", project_id, task_id)


@dataclass
class OverlapResult:
    requested: list[int] = field(default_factory=list)
    carried: list[int] = field(default_factory=list)


def apply_control_overlap(gateway: LabelStudioGateway, db: CyclesDB, cycles: list[QueueRecord],
                          tasks: dict[int, AnnotatedTask], overlap: int) -> OverlapResult:
    """Ask for ``overlap`` annotations on new control tasks; carry unfinished ones into the newest cycle.

    New means: in a cycle after the last one handled, or in the newest cycle when none was
    handled yet (turning the option on does not reopen the project's history).

    The caller holds the project's ``tasks`` lock, which the queue writer holds too: Label
    Studio's task update saves the whole row, so two writers updating one task at once can undo
    each other's fields. A carried task's tags are written over the ``data`` it holds now, read
    under that lock, not over ``tasks`` (read earlier, perhaps before a queue write). Likewise a
    new control task's completion is computed from its annotations read under the lock, by the
    rule the counter repair uses (:func:`counters_of`: distinct annotators, the project's
    skipped-task setting), so the two never set ``is_labeled`` differently.
    """
    result, project_id = OverlapResult(), gateway.project_id
    if not cycles:
        return result
    requested = db.overlap_requested(project_id)
    newest = cycles[-1].cycle
    if overlap > 1:
        handled = db.last_overlap_cycle(project_id)
        handled = newest - 1 if handled is None else handled
        ignore_skipped = None
        for record in cycles:
            fresh = [i.task_id for i in record.items if i.slice == "control" and i.task_id not in requested]
            if record.cycle <= handled or not fresh:
                continue
            if ignore_skipped is None:
                ignore_skipped = gateway.ignores_skipped()
            stored = {int(t["id"]): t.get("annotations") or [] for t in gateway.tasks_with_annotations(fresh, READ_CHUNK)}
            for task_id in fresh:
                done = counters_of(stored.get(task_id, []), overlap, ignore_skipped)[2]
                with skipping_deleted(project_id, task_id):
                    gateway.set_overlap(task_id, overlap, is_labeled=done)
                requested[task_id] = overlap
            db.request_overlap(project_id, record.cycle, fresh, overlap)
            result.requested += fresh
    unfinished = [task_id for task_id, wanted in sorted(requested.items())
                  if task_id in tasks and 1 <= tasks[task_id].completed < wanted]
    for task_id, data in sorted(gateway.tasks_data(unfinished, READ_CHUNK).items()):
        if data.get(CYCLE_FIELD) == newest:
            continue
        with skipping_deleted(project_id, task_id):
            gateway.update_data(task_id, {**data, **queue_tags("control", 0, newest)})
            result.carried.append(task_id)
    if result.requested or result.carried:  # each a task update, which can lose an annotation's counts
        repair_counters(gateway, result.requested + result.carried, chunk=READ_CHUNK)
        logger.info("project %s: overlap %d asked on control tasks %s; carried into cycle %d: %s", project_id,
                    overlap, result.requested, newest, result.carried)
    return result
