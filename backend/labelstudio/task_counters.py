"""Put back the annotation counters a task update overwrote in Label Studio.

Label Studio 1.23 saves the whole task row on ``PATCH /api/tasks/<id>``: it reads the task, sets
the fields sent, and writes every column back. An annotation created on that task between the
read and the write has already updated ``total_annotations`` and ``is_labeled``; the write puts
back the values from before it. Seen in a CI run and read back from its Label Studio: a task
with one annotation, ``total_annotations`` 0 and ``is_labeled`` false, which the queue writer
had tagged in the same 0.1 s as an annotator submitted it. Nothing in Label Studio corrects it
until the task is annotated again, so left alone:

* the queue tab (its filter on ``completed_at`` follows ``is_labeled``) and Label Studio's
  next-task logic keep serving the task, and another annotator labels it again;
* the Data Manager shows it as unlabelled, and exports filtered on completion miss it.

(Training does not depend on the counter: ``ANNOTATED_QUERY`` asks the annotations.)

So every writer of task updates checks the tasks it wrote once it is done, with a light read of
their counters beside their annotation ids, and for a task where they disagree reads it whole and
writes back the counters Label Studio itself would compute (``tasks/models.py``: non-cancelled
and cancelled annotations; complete once as many distinct annotators as the task's ``overlap``
finished it, skipped annotations counting only under "ignore skipped"). That write is a task
update too and can meet the next annotation, so repaired tasks are checked again, a few rounds.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from backend.labelstudio.errors import LabelStudioUnavailable
from backend.labelstudio.gateway import LabelStudioGateway, annotator_of

logger = logging.getLogger(__name__)

__all__ = ["counters_of", "finished_by", "repair_counters"]

#: Check-and-repair rounds after a write; a repair meets another annotation on the same task
#: only in the same fraction of a second, so a second round is rare and a third rarer still.
ROUNDS = 3


def finished_by(annotations: Iterable[Mapping[str, Any]], ignore_skipped: bool) -> set[Any]:
    """The distinct annotators whose annotations count towards a task's completion: one
    annotator's second annotation does not make a task that needs two annotators complete."""
    return {annotator_of(a) for a in annotations
            if ignore_skipped or (not a.get("was_cancelled") and a.get("result") is not None)}


def counters_of(annotations: Iterable[Mapping[str, Any]], overlap: int | None, ignore_skipped: bool) -> tuple[int, int, bool]:
    """``(total_annotations, cancelled_annotations, is_labeled)`` as Label Studio computes them."""
    annotations = list(annotations)
    cancelled = sum(1 for a in annotations if a.get("was_cancelled"))
    complete = len(finished_by(annotations, ignore_skipped)) >= max(1, int(overlap or 1))
    return len(annotations) - cancelled, cancelled, complete


def repair_counters(gateway: LabelStudioGateway, task_ids: Iterable[int], *, chunk: int,
                    outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> list[int]:
    """Check the counters of ``task_ids`` after they were written, and restore those that a
    concurrent annotation's update was lost from; the ids restored."""
    suspects, repaired, ignore_skipped = sorted(set(task_ids)), set(), None
    for _ in range(ROUNDS):
        stale = sorted(tid for tid, counts in gateway.annotation_counts(suspects, chunk, outage).items() if counts.stale)
        if not stale:
            break
        if ignore_skipped is None:
            ignore_skipped = gateway.ignores_skipped(outage)
        fixed = []
        for task in gateway.tasks_with_annotations(stale, chunk, outage):
            counters = counters_of(task.get("annotations") or [], task.get("overlap"), ignore_skipped)
            if (task.get("total_annotations"), task.get("cancelled_annotations"), task.get("is_labeled")) != counters:
                gateway.set_counters(int(task["id"]), *counters, outage)
                fixed.append(int(task["id"]))
        if not fixed:
            break
        logger.info("project %s: restored the annotation counters of task(s) %s, which a task update "
                    "written while they were annotated had overwritten", gateway.project_id, fixed)
        repaired.update(fixed)
        suspects = fixed
    return sorted(repaired)
