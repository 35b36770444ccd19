"""Every call the backend makes to Label Studio, through ``label-studio-sdk`` only.

:class:`LabelStudioGateway` is one project's connection: its config (fetched and parsed), its
annotated, labelled, new and all tasks, task data and overlap updates, and the Data Manager tabs
the queue writer (``queue_writer.py``) uses. Every failure leaves it as one of the two kinds in
``errors.py``: :class:`LabelStudioUnavailable` (retried by the job layer) or
:class:`LabelStudioRefused`. Paged reads stop at the first short page (or once ``total`` tasks
came back), so Label Studio is never asked for a page past the last: the SDK's own pager does
that, and Label Studio logs an ERROR traceback ("Invalid page") for each.

Label Studio is the source of truth for labels: webhooks only tell us *that* something changed;
training re-reads the annotations here. Where to reach Label Studio comes from settings
(``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``) or, as a fallback, from what ``/setup`` sent
(``hostname`` and the project owner's ``access_token``), remembered per project on disk with
owner-only permissions so every worker process can use it. That fallback accepts only hosts the
admin named (``LABELQUEUE_ALLOWED_LS_HOSTS``, or the host of ``LABEL_STUDIO_URL``) and keeps only
the scheme and host, never a path: a caller of ``/setup`` cannot make the backend fetch a URL
of its choosing, nor point training at another server.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from label_studio_sdk import LabelStudio

from backend.errors import HostNotAllowedError
from backend.labelstudio.errors import LabelStudioUnavailable, LabelStudioUnreachable, translated
from backend.labelstudio.label_config import parse_label_config
from backend.model.labelconfig import TaskSpec, kind_of
from backend.settings import Settings
from backend.store import ModelStore, atomic_write_json

logger = logging.getLogger(__name__)

__all__ = ["Connection", "Connections", "LabelStudioGateway", "LabelStudioUnreachable", "LabelledTask",
           "StoredCounts"]

#: Tasks per page of annotated tasks (they carry annotations and predictions, so pages are heavy).
PAGE_SIZE = 500
#: Tasks per page when only ids and data are read.
LIGHT_PAGE_SIZE = 1000
#: Seconds one Label Studio request may take.
TIMEOUT = 120


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str


class Connections:
    """Per-project Label Studio address and token: settings win over what ``/setup`` sent."""

    def __init__(self, settings: Settings, store: ModelStore):
        self.settings = settings
        self.store = store
        self._seen: dict[int, Connection] = {}
        self._lock = threading.Lock()

    def remember(self, project_id: int, hostname: object, access_token: object) -> None:
        """Keep ``/setup``'s fallback; writes to disk only when it changed, so ``/setup`` stays cheap.
        Refuses (``HostNotAllowedError`` naming ``hostname``) a host that is not allowed."""
        if self._configured() is not None:
            return
        if not (isinstance(hostname, str) and hostname and isinstance(access_token, str) and access_token):
            return
        origin = self.allowed_origin(hostname)
        if origin is None:
            raise HostNotAllowedError(f"hostname {hostname[:200]!r} is not an allowed Label Studio: without LABEL_STUDIO_URL, "
                           "name its host in LABELQUEUE_ALLOWED_LS_HOSTS (scheme and host only, no path)",
                           field="hostname")
        connection = Connection(origin, access_token)
        with self._lock:
            if self._seen.get(project_id) == connection:
                return
            self._seen[project_id] = connection
        atomic_write_json(self.store.layout.connection(project_id),
                          {"url": connection.url, "api_key": connection.api_key})

    def allowed_origin(self, url: str) -> str | None:
        """``scheme://host[:port]`` of ``url`` when its host is allowed and it carries no path,
        query or credentials; else None."""
        try:
            parts = urlsplit(url.strip())
            host = (parts.hostname or "").lower()
            bracketed = f"[{host}]" if ":" in host else host  # an IPv6 address
            netloc = f"{bracketed}:{parts.port}" if parts.port else bracketed
        except ValueError:  # a malformed port or host
            return None
        if (parts.scheme not in ("http", "https") or not host or "@" in parts.netloc
                or parts.path not in ("", "/") or parts.query or parts.fragment):
            return None
        allowed = {h.strip().lower() for h in self.settings.allowed_ls_hosts.split(",") if h.strip()}
        if self.settings.label_studio_url:
            configured = urlsplit(self.settings.label_studio_url)
            allowed.add((configured.hostname or "").lower())
        return f"{parts.scheme}://{netloc}" if {host, bracketed, netloc} & allowed else None

    def _configured(self) -> Connection | None:
        if self.settings.label_studio_url and self.settings.label_studio_api_key:
            return Connection(self.settings.label_studio_url.rstrip("/"), self.settings.label_studio_api_key)
        return None

    def resolve(self, project_id: int) -> Connection:
        configured = self._configured()
        if configured is not None:
            return configured
        with self._lock:
            known = self._seen.get(project_id)
        if known is not None:
            return known
        path = self.store.layout.connection(project_id)
        try:
            data = json.loads(path.read_text())
            origin = self.allowed_origin(data["url"])  # written before the allow-list, or by hand
            if origin is None:
                raise LabelStudioUnreachable(f"project {project_id}: the Label Studio host remembered from /setup "
                                             "is not on LABELQUEUE_ALLOWED_LS_HOSTS")
            return Connection(origin, data["api_key"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise LabelStudioUnreachable(
                f"project {project_id}: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY, or connect the "
                "backend in Label Studio so that /setup tells us the host and token") from None

    def gateway(self, project_id: int) -> LabelStudioGateway:
        """The project's gateway; ``LabelStudioUnreachable`` if we do not know where Label Studio is."""
        return LabelStudioGateway(self.resolve(project_id), project_id)


class LabelStudioGateway:
    """One project's Label Studio, as the loop, training and measurement use it.

    Cheap to make (one per job). Each thread gets its own SDK client: the queue writer updates
    tasks from a few threads, and under gevent a connection must stay on the hub that opened it.
    """

    def __init__(self, connection: Connection, project_id: int):
        self.connection = connection
        self.project_id = project_id
        self._local = threading.local()

    def _client(self) -> LabelStudio:
        client = getattr(self._local, "client", None)
        if client is None:
            client = LabelStudio(base_url=self.connection.url, api_key=self.connection.api_key, timeout=TIMEOUT)
            self._local.client = client
        return client

    def spec(self) -> TaskSpec:
        """The project's labelling config, fetched and parsed (parsing is cached per config)."""
        with translated(f"reading the labelling config of project {self.project_id}"):
            xml = self._client().projects.get(id=self.project_id).label_config
        return parse_label_config(xml)

    def _pages(self, step: str, page_size: int, outage: type[LabelStudioUnavailable] = LabelStudioUnavailable,
               most: int | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Tasks of a paged list, as plain dicts; never asks for a page past the last. ``most``:
        how many the list can hold at most (the ids asked for), when the caller knows it."""
        page, seen = 1, 0
        while True:
            with translated(f"{step} (page {page})", outage=outage):
                pager = self._client().tasks.list(project=self.project_id, page=page, page_size=page_size,
                                                  resolve_uri=False, **params)
            items = pager.items or []
            seen += len(items)
            yield from (task.model_dump() for task in items)
            total = getattr(pager.response, "total", None)
            known = [n for n in (total if isinstance(total, int) else None, most) if n is not None]
            if len(items) < page_size or any(seen >= n for n in known):
                return
            page += 1

    def annotated_tasks(self) -> Iterator[dict[str, Any]]:
        """Annotated tasks with their annotations and predictions."""
        return self._pages(f"reading the annotated tasks of project {self.project_id}", PAGE_SIZE,
                           fields="all", query=ANNOTATED_QUERY)

    def labelled(self, spec: TaskSpec) -> list[LabelledTask]:
        """Every task with at least one usable annotation, resolved to one label set."""
        return [item for item in (labelled_task(task, spec) for task in self.annotated_tasks()) if item is not None]

    def tasks_after(self, newest: int) -> list[dict[str, Any]]:
        """Tasks (``id``, ``data``, ``meta``) with an id above ``newest``: those created since."""
        query = {"filters": {"conjunction": "and", "items": [
            {"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": newest}]}}
        return list(self._pages(f"reading the new tasks of project {self.project_id}", LIGHT_PAGE_SIZE,
                                query=json.dumps(query), fields="task_only", include="id,data,meta"))

    def task_ids(self) -> list[int]:
        """Ids of every task of the project."""
        return [int(task["id"]) for task in self._pages(f"reading the task ids of project {self.project_id}",
                                                         LIGHT_PAGE_SIZE * 5, include="id")]

    def _selected(self, what: str, task_ids: list[int], chunk: int, outage: type[LabelStudioUnavailable],
                  **params: Any) -> Iterator[dict[str, Any]]:
        """Those ``task_ids`` that are in the project, ``chunk`` ids per request (the ids travel in
        the query string, which servers cap); ``what`` names the read in errors."""
        for start in range(0, len(task_ids), chunk):
            ids = task_ids[start:start + chunk]
            yield from self._pages(f"{what} {len(ids)} tasks of project {self.project_id}", chunk, outage, len(ids),
                                   query=json.dumps({"selectedItems": {"all": False, "included": ids}}), **params)

    def tasks_data(self, task_ids: list[int], chunk: int,
                   outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> dict[int, dict[str, Any]]:
        """Current ``data`` of those ``task_ids`` that are in the project."""
        return {int(t["id"]): dict(t.get("data") or {}) for t in self._selected(
            "reading", task_ids, chunk, outage, fields="task_only", include="id,data")}

    def annotation_counts(self, task_ids: list[int], chunk: int,
                          outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> dict[int, StoredCounts]:
        """For those ``task_ids`` in the project: the annotation counters Label Studio stores on
        the task, and how many annotations it has (a light read: no annotation bodies)."""
        return {int(t["id"]): stored_counts(t) for t in self._selected(
            "reading the annotation counts of", task_ids, chunk, outage,
            fields="all", include="id,total_annotations,cancelled_annotations,annotations_ids")}

    def tasks_with_annotations(self, task_ids: list[int], chunk: int,
                               outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> list[dict[str, Any]]:
        """Those ``task_ids`` in the project, whole (annotations included). A list read, not
        ``GET /api/tasks/<id>``: that one has Label Studio ask the ML backend for a prediction of
        a task without one, which would date a labelled task's newest prediction after its label."""
        return list(self._selected("reading", task_ids, chunk, outage, fields="all"))

    def ignores_skipped(self, outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> bool:
        """Whether the project counts a skipped annotation towards a task's completion."""
        with translated(f"reading the settings of project {self.project_id}", outage=outage):
            return self._client().projects.get(id=self.project_id).skip_queue == "IGNORE_SKIPPED"

    def set_counters(self, task_id: int, total: int, cancelled: int, is_labeled: bool,
                     outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> None:
        """Write a task's annotation counters and completion (``task_counters.py`` says why)."""
        body = {"total_annotations": total, "cancelled_annotations": cancelled, "is_labeled": is_labeled}
        with translated(f"restoring the annotation counters of task {task_id}", outage=outage):
            self._client().tasks.update(id=str(task_id), request_options={"additional_body_parameters": body})

    def tab_tasks_data(self, tab_id: int, page_size: int,
                       outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> dict[int, dict[str, Any]]:
        """Current ``data`` of the tasks a Data Manager tab lists now, with its filters."""
        return {int(t["id"]): dict(t.get("data") or {}) for t in self._pages(
            f"reading tab {tab_id} of project {self.project_id}", page_size, outage,
            view=tab_id, fields="task_only", include="id,data")}

    def update_data(self, task_id: int, data: dict[str, Any],
                    outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> None:
        """Replace a task's ``data`` (Label Studio replaces it whole; send every key)."""
        with translated(f"updating the data of task {task_id}", outage=outage):
            self._client().tasks.update(id=str(task_id), data=data)

    def set_overlap(self, task_id: int, overlap: int, is_labeled: bool) -> None:
        """Ask for ``overlap`` annotations on a task; ``is_labeled`` is sent too, because Label
        Studio 1.23 does not recompute it when only ``overlap`` changes."""
        with translated(f"setting overlap {overlap} on task {task_id}"):
            self._client().tasks.update(id=str(task_id), overlap=overlap,
                                        request_options={"additional_body_parameters": {"is_labeled": is_labeled}})

    def tabs(self, outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> list[dict[str, Any]]:
        """The project's Data Manager tabs, each with ``id`` and ``data`` (title, filters, ...)."""
        with translated(f"reading the tabs of project {self.project_id}", outage=outage):
            return [{"id": int(view.id), "data": dict(view.data or {})}
                    for view in self._client().views.list(project=self.project_id)]

    def create_tab(self, data: dict[str, Any], outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> int:
        """A new Data Manager tab; its id."""
        with translated(f"creating a tab in project {self.project_id}", outage=outage):
            return int(self._client().views.create(project=self.project_id, data=data).id)

    def update_tab(self, tab_id: int, data: dict[str, Any],
                   outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> None:
        """Replace a tab's ``data``."""
        with translated(f"updating tab {tab_id} of project {self.project_id}", outage=outage):
            self._client().views.update(id=str(tab_id), project=self.project_id, data=data)


@dataclass(frozen=True)
class LabelledTask:
    """One task's resolved label, as training and selection need it."""

    task_id: int
    text: str
    labels: tuple[str, ...]
    overridden: bool


#: Data Manager filter for tasks with at least one annotation (skipped ones too; ``labelled_task``
#: drops those). It asks the annotations themselves, not the task's ``total_annotations``
#: counter: Label Studio 1.23 saves the whole task row on every ``PATCH /api/tasks/<id>``, so a
#: task update that overlaps an annotation's creation writes back the counter it read before
#: (see ``task_counters.py``), and a filter on the counter would miss that label until the task
#: is annotated again (seen in CI: a model on 159 of 160 labels after every read). The tasks
#: API's own ``only_annotated`` parameter is ignored by Label Studio 1.23 (it pages through every
#: task), which made a retrain on a 50,000-task project read all 50,000.
ANNOTATED_QUERY = json.dumps({"filters": {"conjunction": "and", "items": [
    {"filter": "filter:tasks:annotators", "operator": "empty", "type": "List", "value": False}]}})


@dataclass(frozen=True)
class StoredCounts:
    """A task's annotation counters as stored, beside the number of annotations it has."""

    total: int
    cancelled: int
    annotations: int

    @property
    def stale(self) -> bool:
        """Every annotation is either counted or counted as cancelled, unless a row was overwritten."""
        return self.total + self.cancelled != self.annotations


def stored_counts(task: dict[str, Any]) -> StoredCounts:
    """Read from a task listed with ``annotations_ids``, which Label Studio sends as text ("2,4,3";
    "2, 4, 3" on PostgreSQL; empty for none), cut at its column limit: the count is a lower
    bound, good to find suspects, and the full read decides (``task_counters.py``)."""
    ids = [part for part in str(task.get("annotations_ids") or "").split(",") if part.strip()]
    return StoredCounts(int(task.get("total_annotations") or 0), int(task.get("cancelled_annotations") or 0), len(ids))


def annotator_of(annotation: dict[str, Any]) -> int | None:
    """The id of who completed an annotation: task lists give the id, a single task the user."""
    who = annotation.get("completed_by")
    who = who.get("id") if isinstance(who, dict) else who
    return None if who is None else int(who)


def labelled_task(task: dict[str, Any], spec: TaskSpec) -> LabelledTask | None:
    """Resolve one exported task; ``None`` when it has no usable annotation or no text."""
    text = (task.get("data") or {}).get(spec.value_key)
    if not isinstance(text, str):
        return None
    usable = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    labels = resolve_annotations(usable, spec)
    if labels is None:
        return None
    predicted = latest_prediction_labels(task.get("predictions") or [], spec)
    return LabelledTask(task_id=int(task["id"]), text=text, labels=labels,
                        overridden=predicted is not None and predicted != labels)


def resolve_annotations(annotations: Iterable[dict[str, Any]], spec: TaskSpec) -> tuple[str, ...] | None:
    """Majority vote over annotators' label sets; ties go to the most recently updated annotation.

    Skipped or cancelled annotations must be filtered out by the caller. Labels are read by the
    project's task kind, which drops what is not in the config (renamed or removed labels)
    rather than learn it, and says whether an empty result is a label: a span annotation with
    no spans votes "no entities" (``()``), a classification with no choice does not vote.
    """
    votes: list[tuple[tuple[str, ...], tuple[str, int]]] = []
    for annotation in annotations:
        labels = kind_of(spec).labels_of(annotation.get("result") or [], spec)
        if labels is not None:
            recency = (str(annotation.get("updated_at") or annotation.get("created_at") or ""),
                       int(annotation.get("id") or 0))
            votes.append((labels, recency))
    if not votes:
        return None
    counts = Counter(labels for labels, _ in votes)
    top = max(counts.values())
    tied = [(recency, labels) for labels, recency in votes if counts[labels] == top]
    return max(tied)[1]


def latest_prediction_labels(predictions: Iterable[dict[str, Any]], spec: TaskSpec) -> tuple[str, ...] | None:
    """The labels of the newest prediction that says something (a span model's "no entities"
    does), to tell whether an annotator overrode it."""
    dated = [(str(p.get("created_at") or ""), int(p.get("id") or 0), p) for p in predictions]
    for _, _, prediction in sorted(dated, key=lambda d: d[:2], reverse=True):
        labels = kind_of(spec).labels_of(prediction.get("result") or [], spec)
        if labels is not None:
            return labels
    return None
