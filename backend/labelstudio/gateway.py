"""Everything the backend reads from Label Studio, through ``label-studio-sdk`` only.

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

from backend.errors import ApiError
from backend.model.labelconfig import TaskSpec, kind_of
from backend.settings import Settings
from backend.store import ModelStore, atomic_write_json

logger = logging.getLogger(__name__)

PAGE_SIZE = 500


class LabelStudioUnreachable(RuntimeError):
    """We do not know how to reach Label Studio for this project."""


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
        Refuses (400 naming ``hostname``) a host that is not allowed."""
        if self._configured() is not None:
            return
        if not (isinstance(hostname, str) and hostname and isinstance(access_token, str) and access_token):
            return
        origin = self.allowed_origin(hostname)
        if origin is None:
            raise ApiError(f"hostname {hostname[:200]!r} is not an allowed Label Studio: without LABEL_STUDIO_URL, "
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

    def client(self, project_id: int) -> LabelStudio:
        connection = self.resolve(project_id)
        return LabelStudio(base_url=connection.url, api_key=connection.api_key, timeout=120)


@dataclass(frozen=True)
class LabelledTask:
    """One task's resolved label, as training and selection need it."""

    task_id: int
    text: str
    labels: tuple[str, ...]
    overridden: bool


#: Data Manager filter for tasks with at least one non-cancelled annotation. The tasks API's own
#: ``only_annotated`` parameter is ignored by Label Studio 1.23 (it pages through every task),
#: which made a retrain on a 50,000-task project read all 50,000.
ANNOTATED_QUERY = json.dumps({"filters": {"conjunction": "and", "items": [
    {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0}]}})


def iter_annotated_tasks(client: LabelStudio, project_id: int) -> Iterator[dict[str, Any]]:
    """Annotated tasks with their annotations and predictions, as plain dicts."""
    pager = client.tasks.list(project=project_id, fields="all", query=ANNOTATED_QUERY,
                              resolve_uri=False, page_size=PAGE_SIZE)
    for task in pager:
        yield task.model_dump()


def fetch_labelled(client: LabelStudio, project_id: int, spec: TaskSpec) -> list[LabelledTask]:
    """Every task with at least one usable annotation, resolved to one label set."""
    labelled = []
    for task in iter_annotated_tasks(client, project_id):
        item = labelled_task(task, spec)
        if item is not None:
            labelled.append(item)
    return labelled


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
    rather than learn it.
    """
    votes: list[tuple[tuple[str, ...], tuple[str, int]]] = []
    for annotation in annotations:
        labels = kind_of(spec).labels_of(annotation.get("result") or [], spec)
        if labels:
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
    """The labels of the newest non-empty prediction, to tell whether an annotator overrode it."""
    dated = [(str(p.get("created_at") or ""), int(p.get("id") or 0), p) for p in predictions]
    for _, _, prediction in sorted(dated, key=lambda d: d[:2], reverse=True):
        labels = kind_of(spec).labels_of(prediction.get("result") or [], spec)
        if labels:
            return labels
    return None
