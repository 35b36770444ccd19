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
Studio ~0.1-0.2 s). A task edited in Label Studio between that read and its ``PATCH`` loses
the edit; batches are written right after they are composed, while imported task data is
normally left alone. Labelled tasks keep their tags as a record; the tab's "not yet labelled"
filter hides them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.core.parse_error import ParsingError

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

_HINTS = {
    401: "check LABEL_STUDIO_API_KEY (a legacy token needs legacy tokens enabled in Label Studio)",
    403: "the token's user needs permission to edit this project's tasks and Data Manager tabs",
    404: "check that the project still exists and that LABEL_STUDIO_URL points at the right server",
}


class QueueWriteError(SelectionError):
    """Label Studio refused or failed a queue write, or the batch names tasks it does not have."""


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
    seconds : float
        Wall time of the whole write.
    """

    tab_id: int
    cycle: int
    tagged: int
    cleared: int
    seconds: float


def write_queue(
    client: LabelStudio,
    project_id: int,
    items: Sequence[BatchItem],
    cycle: int,
    *,
    previous: Sequence[int] = (),
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
    client : LabelStudio
        SDK client for the Label Studio that holds the project.
    project_id : int
        Project whose queue to write.
    items : sequence of BatchItem
        The composed batch; task ids distinct, ranks distinct in ``1..10**RANK_WIDTH - 1``.
    cycle : int
        Number of this selection cycle, recorded in each task's tags.
    previous : sequence of int
        Task ids tagged by earlier cycles. Those not in ``items`` lose their tags, as do all
        unlabelled tasks the tab lists (so tags left by an interrupted write are cleared too);
        ids of tasks deleted since are ignored.

    Returns
    -------
    QueueWriteResult

    Raises
    ------
    DuplicateTaskIdError
        If ``items`` names a task twice.
    ValueError
        If ranks repeat or fall outside ``1..10**RANK_WIDTH - 1``.
    QueueWriteError
        If a batch task is not in the project, or Label Studio cannot be reached or refuses a
        request; the message says which step failed and what to check.
    """
    started = time.monotonic()
    _check_items(items)
    queued = {item.task_id: item for item in items}
    tab_id = _ensure_tab(client, project_id)
    current = _read_tab(client, project_id, tab_id)
    leaving = sorted((set(previous) | current.keys()) - queued.keys())
    current.update(_read_data(client, project_id, sorted(({*queued, *leaving}) - current.keys())))
    missing = sorted(queued.keys() - current.keys())
    if missing:
        raise QueueWriteError(
            f"project {project_id} has no task(s) {missing[:5]}"
            f"{' and more' if len(missing) > 5 else ''}: the batch was composed from a stale "
            "pool or for another project; rescore the pool and compose the batch again"
        )

    for item in sorted(items, key=lambda item: item.rank):
        data = current[item.task_id]
        _write_data(client, item.task_id, data, _tagged(data, item, cycle))
    cleared = 0
    for task_id in leaving:
        data = current.get(task_id)
        if data is not None and _write_data(client, task_id, data, _untagged(data)):
            cleared += 1

    result = QueueWriteResult(
        tab_id=tab_id,
        cycle=cycle,
        tagged=len(queued),
        cleared=cleared,
        seconds=time.monotonic() - started,
    )
    logger.info(
        "project %d cycle %d: tagged %d tasks %s, cleared %d of %d earlier, tab %d, %.2fs",
        project_id,
        cycle,
        result.tagged,
        dict(Counter(item.slice for item in items)),
        result.cleared,
        len(leaving),
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


def _read_data(client: LabelStudio, project_id: int, task_ids: list[int]) -> dict[int, dict]:
    """Current ``data`` of those ``task_ids`` that are in the project, by task id."""
    found: dict[int, dict] = {}
    with _reporting(f"reading {len(task_ids)} tasks of project {project_id}"):
        for start in range(0, len(task_ids), READ_CHUNK):
            chunk = task_ids[start : start + READ_CHUNK]
            pager = client.tasks.list(
                project=project_id,
                query=json.dumps({"selectedItems": {"all": False, "included": chunk}}),
                fields="task_only",
                include="id,data",
                resolve_uri=False,
                page_size=READ_CHUNK,
            )
            found.update((int(task.id), dict(task.data or {})) for task in pager)
    return found


def _read_tab(client: LabelStudio, project_id: int, tab_id: int) -> dict[int, dict]:
    """Current ``data`` of the tasks the queue tab lists now (tagged and not yet labelled)."""
    with _reporting(f"reading the {QUEUE_TAB_TITLE!r} tab of project {project_id}"):
        pager = client.tasks.list(
            project=project_id,
            view=tab_id,
            fields="task_only",
            include="id,data",
            resolve_uri=False,
            page_size=READ_CHUNK,
        )
        return {int(task.id): dict(task.data or {}) for task in pager}


def _write_data(client: LabelStudio, task_id: int, old: dict, new: dict) -> bool:
    """Replace a task's ``data`` with ``new`` unless it equals ``old``; True if it wrote."""
    if new == old:
        return False
    with _reporting(f"updating the data of task {task_id}"):
        client.tasks.update(id=str(task_id), data=new)
    logger.debug("task %d: labelqueue tags %s", task_id, {k: new.get(k) for k in QUEUE_FIELDS})
    return True


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


def _ensure_tab(client: LabelStudio, project_id: int) -> int:
    """Create the queue tab, or restore its filters and ordering if someone changed them; its id.

    An existing tab keeps whatever the team set on it in the Data Manager (hidden columns,
    widths); only title, filters and ordering are ours, and they are written only when they
    differ, so the tab a browser loaded stays valid.
    """
    with _reporting(f"writing the {QUEUE_TAB_TITLE!r} tab of project {project_id}"):
        tabs = [
            tab
            for tab in client.views.list(project=project_id)
            if (tab.data or {}).get("title") == QUEUE_TAB_TITLE
        ]
        if not tabs:
            return int(client.views.create(project=project_id, data=QUEUE_VIEW).id)
        tab = min(tabs, key=lambda found: found.id)
        if len(tabs) > 1:
            logger.warning(
                "project %d has %d tabs titled %r; using the oldest (%d)",
                project_id,
                len(tabs),
                QUEUE_TAB_TITLE,
                tab.id,
            )
        data = tab.data or {}
        if any(data.get(key) != value for key, value in QUEUE_VIEW.items()):
            client.views.update(id=str(tab.id), project=project_id, data={**data, **QUEUE_VIEW})
        return int(tab.id)


@contextmanager
def _reporting(step: str) -> Iterator[None]:
    """Turn the SDK's and httpx's errors into a :class:`QueueWriteError` naming ``step``."""
    try:
        yield
    except (ApiError, ParsingError) as error:
        hint = _HINTS.get(error.status_code or 0, "see Label Studio's log for details")
        raise QueueWriteError(
            f"{step} failed: Label Studio answered HTTP {error.status_code}: "
            f"{str(error.body)[:300]}; {hint}"
        ) from error
    except httpx.HTTPError as error:
        raise QueueWriteError(
            f"{step} failed: could not reach Label Studio ({error!r}); "
            "check LABEL_STUDIO_URL and that the server is running"
        ) from error
