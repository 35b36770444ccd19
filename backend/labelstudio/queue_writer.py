"""Write a composed batch into a project's queue: selection's only link to Label Studio.

The queue is two things in Label Studio: four tags in each queued task's ``data`` (a fixed
marker, slice, rank, cycle) and one Data Manager tab, "Active learning queue". Annotators open
the tab and press "Label Tasks As Displayed", which sends the tab's filters and ordering *as
they were when the page loaded* with every next-task request. The tab's filters therefore never
change between cycles: "carries the queue marker" and "not yet labelled" (``completed_at`` is
empty), ordered by rank. A browser that loaded the tab before a batch change keeps being served
the current batch. Tags live in ``data`` rather than ``meta`` because Label Studio 1.23 cannot
order by ``meta`` fields (HTTP 500).

A write tags the new batch first and clears the tags of tasks that left it afterwards, so no
queued task is untagged mid-write: while it runs, the tab serves the union of both batches by
rank. Label Studio itself keeps a task locked by one annotator from being served to another.

Facts about Label Studio 1.23 this module is built on, checked against live servers on SQLite
and on PostgreSQL (the URI resolution one read from Label Studio's source):

* ``PATCH /api/tasks/<id>`` (``client.tasks.update``) *replaces* ``data``; so every write sends
  the task's whole current ``data`` with our keys merged in or removed.
* Task lists resolve storage URIs (``s3://...``) to proxy URLs unless ``resolve_uri=false``;
  writing a resolved list back would corrupt the task, so reads ask for the stored data.
* Ordering by a ``data`` field compares the JSON value as text on PostgreSQL (``->>``), so
  integer ranks come out 1, 10, 11, 2, ... there, while SQLite happens to compare them as
  numbers. A tab setting (``columnsDisplayType``) fixes the tab's list but not the next-task
  request. The rank is therefore stored zero-padded (``"000010"``): text order equals numeric
  order on every database, and ``int()`` reads it back.
* A ``Number`` filter casts the ``data`` field to a float on both databases, so the marker is
  stored as the int 1 and filtered with ``type="Number"``; a ``String`` filter with ``"1"``
  does not match an int 1.
* ``completed_at`` is null exactly while a task is not ``is_labeled`` (Label Studio annotates
  it only then), so the "empty" filter on it keeps tasks that still want labels, including
  control tasks under overlap that one annotator has labelled.

Label Studio has no bulk task update that preserves ``data``, so a write is one paged read of
all touched tasks plus one ``PATCH`` per task whose data actually changes (each takes Label
Studio ~0.1-0.2 s): a task whose tags are already what the new batch says is not written. The
``PATCH``es of each phase (tagging, then clearing) run ``WRITE_CONCURRENCY`` at a time; the
clearing phase starts only once every tag is written. A task edited in Label Studio between that
read and its ``PATCH`` loses the edit; batches are written right after they are composed, while
imported task data is normally left alone. Labelled tasks keep their tags as a record; the tab's
"not yet labelled" filter hides them.

Each ``PATCH`` saves the whole task row, so an annotation submitted on a task during its
``PATCH`` loses its counter update (``total_annotations``, ``is_labeled``) and the tab would
serve that task again. Once both phases are done, the tasks written are checked and such
counters restored (``task_counters.py``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from backend.labelstudio.errors import QueueWriteError
from backend.labelstudio.gateway import LabelStudioGateway
from backend.labelstudio.task_counters import repair_counters
from selection.batch import BatchItem
from selection.errors import DuplicateTaskIdError, SelectionError

__all__ = [
    "CYCLE_FIELD",
    "QUEUED_FIELD",
    "QUEUE_FIELDS",
    "QUEUE_TAB_TITLE",
    "RANK_FIELD",
    "RANK_WIDTH",
    "SLICE_FIELD",
    "QueueWriteError",
    "QueueWriteResult",
    "StaleBatchError",
    "queue_tags",
    "write_queue",
]

logger = logging.getLogger(__name__)

QUEUE_TAB_TITLE = "Active learning queue"
SLICE_FIELD = "labelqueue_slice"
RANK_FIELD = "labelqueue_rank"
CYCLE_FIELD = "labelqueue_cycle"
#: The marker the tab filters on; its value never changes, so a tab loaded earlier still matches.
QUEUED_FIELD = "labelqueue_queued"
QUEUED = 1
#: Digits of the stored rank; ranks up to 999,999 keep text order equal to numeric order.
RANK_WIDTH = 6
QUEUE_FIELDS = (QUEUED_FIELD, SLICE_FIELD, RANK_FIELD, CYCLE_FIELD)
#: Task ids per read: the ids travel in the query string, which servers cap at ~4-8 KB.
READ_CHUNK = 200
#: Task updates in flight at once during a write (see ``bench/RESULTS.md``, "Full cycle").
WRITE_CONCURRENCY = 4


class StaleBatchError(SelectionError):
    """The batch names tasks the project does not have (composed from a stale pool); nothing was
    written. Not an outage: the next cycle composes from a reconciled pool."""


@dataclass(frozen=True)
class QueueWriteResult:
    """What one :func:`write_queue` call left in Label Studio.

    Attributes
    ----------
    tab_id : int
        Id of the "Active learning queue" Data Manager tab.
    cycle : int
        Cycle recorded in the batch tasks' tags.
    tagged : int
        Tasks carrying this cycle's tags (the batch size).
    cleared : int
        Earlier-cycle tasks whose tags were removed.
    repaired : int
        Written tasks whose annotation counters a concurrent annotation's update was lost from,
        and were restored (see ``task_counters.py``).
    seconds : float
        Wall time of the whole write.
    """

    tab_id: int
    cycle: int
    tagged: int
    cleared: int
    repaired: int
    seconds: float


def write_queue(
    gateway: LabelStudioGateway,
    items: Sequence[BatchItem],
    cycle: int,
    *,
    previous: Sequence[int] = (),
    concurrency: int = WRITE_CONCURRENCY,
) -> QueueWriteResult:
    """Make ``items`` the project's labelling queue for ``cycle``.

    Makes sure the queue tab exists with its fixed filters (creating it on first use), tags
    every batch task in rank order, then removes the tags from ``previous`` tasks that left the
    queue. Tagging before clearing means a task in both batches is never untagged, and an
    annotator working the tab is served a queued task throughout the write. Every other key of
    each task's ``data`` is written back unchanged. Rerunning with the same arguments is safe:
    tasks already tagged are not written again.

    Parameters
    ----------
    gateway : LabelStudioGateway
        The project whose queue to write.
    items : sequence of BatchItem
        The composed batch; task ids distinct, ranks distinct in ``1..10**RANK_WIDTH - 1``.
    cycle : int
        Number of this selection cycle, recorded in each task's tags.
    previous : sequence of int
        Task ids tagged by earlier cycles. Those not in ``items`` lose their tags, as do all
        unlabelled tasks the tab lists (so tags left by an interrupted write are cleared too);
        ids of tasks deleted since are ignored.
    concurrency : int
        Task updates in flight at once.

    Returns
    -------
    QueueWriteResult

    Raises
    ------
    DuplicateTaskIdError
        If ``items`` names a task twice.
    ValueError
        If ranks repeat or fall outside ``1..10**RANK_WIDTH - 1``.
    StaleBatchError
        If a batch task is not in the project; nothing is written.
    QueueWriteError
        If Label Studio cannot be reached or fails mid-write; the message says which step.
    LabelStudioRefused
        If Label Studio refuses a request (a wrong token, a deleted project); the message says
        what to check.
    """
    started = time.monotonic()
    _check_items(items)
    project_id = gateway.project_id
    queued = {item.task_id: item for item in items}
    tab_id = _ensure_tab(gateway)
    current = gateway.tab_tasks_data(tab_id, READ_CHUNK, outage=QueueWriteError)
    leaving = sorted((set(previous) | current.keys()) - queued.keys())
    current.update(gateway.tasks_data(sorted(({*queued, *leaving}) - current.keys()), READ_CHUNK,
                                      outage=QueueWriteError))
    missing = sorted(queued.keys() - current.keys())
    if missing:
        raise StaleBatchError(
            f"project {project_id} has no task(s) {missing[:5]}"
            f"{' and more' if len(missing) > 5 else ''}: the batch was composed from a stale "
            "pool or for another project; rescore the pool and compose the batch again"
        )

    tags = [(item.task_id, _tagged(current[item.task_id], item, cycle))
            for item in sorted(items, key=lambda item: item.rank)]
    clears = [(task_id, _untagged(current[task_id])) for task_id in leaving if task_id in current]
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="queue-write") as pool:
        tagged = _write_changed(gateway, pool, current, tags)  # every tag lands before the first clear
        cleared = _write_changed(gateway, pool, current, clears)
    repaired = repair_counters(gateway, tagged + cleared, chunk=READ_CHUNK, outage=QueueWriteError)

    result = QueueWriteResult(
        tab_id=tab_id,
        cycle=cycle,
        tagged=len(queued),
        cleared=len(cleared),
        repaired=len(repaired),
        seconds=time.monotonic() - started,
    )
    logger.info(
        "project %d cycle %d: tagged %d tasks %s, cleared %d of %d earlier, %d counter(s) restored, tab %d, %.2fs",
        project_id,
        cycle,
        result.tagged,
        dict(Counter(item.slice for item in items)),
        result.cleared,
        len(leaving),
        result.repaired,
        result.tab_id,
        result.seconds,
    )
    return result


def _check_items(items: Sequence[BatchItem]) -> None:
    """Reject a batch that would write ambiguous tags, before anything is written."""
    repeated = sorted(tid for tid, n in Counter(item.task_id for item in items).items() if n > 1)
    if repeated:
        raise DuplicateTaskIdError(
            f"the batch queues task id(s) {repeated[:5]} more than once; each task may appear once"
        )
    ranks = [item.rank for item in items]
    limit = 10**RANK_WIDTH
    if len(set(ranks)) != len(ranks) or not all(1 <= rank < limit for rank in ranks):
        raise ValueError(
            f"batch ranks must be distinct and within 1..{limit - 1}; got {sorted(ranks)[:10]}..."
        )


def queue_tags(slice_name: str, rank: int, cycle: int) -> dict[str, Any]:
    """The ``data`` keys that put a task in the queue tab at ``rank`` (0 sorts before a batch)."""
    return {
        QUEUED_FIELD: QUEUED,
        SLICE_FIELD: slice_name,
        RANK_FIELD: f"{rank:0{RANK_WIDTH}d}",
        CYCLE_FIELD: cycle,
    }


def _tagged(data: dict[str, Any], item: BatchItem, cycle: int) -> dict[str, Any]:
    return {**data, **queue_tags(item.slice, item.rank, cycle)}


def _untagged(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in QUEUE_FIELDS}


def _write_changed(gateway: LabelStudioGateway, pool: ThreadPoolExecutor, current: dict[int, dict],
                   writes: list[tuple[int, dict]]) -> list[int]:
    """Replace the ``data`` of each task whose new data differs from ``current``; the ids
    written. Returns only when every write has finished; the first failure is raised."""
    changed = [(task_id, new) for task_id, new in writes if new != current[task_id]]
    for _ in pool.map(lambda write: gateway.update_data(*write, outage=QueueWriteError), changed):
        pass
    for task_id, new in changed:
        logger.debug("task %d: labelqueue tags %s", task_id, {k: new.get(k) for k in QUEUE_FIELDS})
    return [task_id for task_id, _ in changed]


#: The tab's filters and ordering: the same in every cycle (see the module docstring).
QUEUE_VIEW = {
    "title": QUEUE_TAB_TITLE,
    "filters": {
        "conjunction": "and",
        "items": [
            {
                "filter": f"filter:tasks:data.{QUEUED_FIELD}",
                "operator": "equal",
                "type": "Number",
                "value": QUEUED,
            },
            {
                "filter": "filter:tasks:completed_at",
                "operator": "empty",
                "type": "Datetime",
                "value": True,
            },
        ],
    },
    "ordering": [f"tasks:data.{RANK_FIELD}"],
}


def _ensure_tab(gateway: LabelStudioGateway) -> int:
    """Create the queue tab, or restore its filters and ordering if someone changed them; its id.

    An existing tab keeps whatever the team set on it in the Data Manager (hidden columns,
    widths); only title, filters and ordering are ours, and they are written only when they
    differ, so the tab a browser loaded stays valid.
    """
    tabs = [tab for tab in gateway.tabs(outage=QueueWriteError) if tab["data"].get("title") == QUEUE_TAB_TITLE]
    if not tabs:
        return gateway.create_tab(QUEUE_VIEW, outage=QueueWriteError)
    tab = min(tabs, key=lambda found: found["id"])
    if len(tabs) > 1:
        logger.warning("project %d has %d tabs titled %r; using the oldest (%d)",
                       gateway.project_id, len(tabs), QUEUE_TAB_TITLE, tab["id"])
    data = tab["data"]
    if any(data.get(key) != value for key, value in QUEUE_VIEW.items()):
        gateway.update_tab(tab["id"], {**data, **QUEUE_VIEW}, outage=QueueWriteError)
    return tab["id"]
