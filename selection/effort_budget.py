"""A batch bounded by annotator effort (a sentence's tokens) as well as by its task count.

For span labelling a long sentence costs more to label than a short one, so a project may give
its batch a token budget. The batch is composed as usual (task count, slice shares, ranks) and
then cut to the longest rank prefix that fits the budget: the ranks interleave the slices, so a
prefix keeps their shares, and control items stay where the composer put them.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from selection.batch import Batch


def within_effort_budget(batch: Batch, effort: Mapping[int, int], budget: int) -> Batch:
    """The rank prefix of ``batch`` whose items' ``effort`` (per task id; 0 if missing) sums to
    at most ``budget``; at least the first item, so a sentence longer than the budget is still
    labelled rather than starving the queue."""
    items = sorted(batch.items, key=lambda item: item.rank)
    kept, spent = [], 0
    for item in items:
        spent += int(effort.get(item.task_id, 0))
        if kept and spent > budget:
            break
        kept.append(item)
    return Batch(items=kept, counts=dict(Counter(item.slice for item in kept)))
