"""The one rule for ids that reach the HTTP edge: project ids in URLs and bodies, task ids in bodies.

Label Studio's ids are 32-bit database keys, so an id is an integer from 1 to ``MAX_ID``,
written with ASCII digits only. Every route takes its project id through the
``<project_id:...>`` URL converter and every body id through :func:`project_id_of` or
:func:`bounded_id`, so the cores below the edge (the store, the schedulers, SQLite) never
see 0, a negative number, a 64-bit overflow or a non-ASCII digit.
"""
from __future__ import annotations

from typing import Any

from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter

from backend.ids import MAX_PROJECT_ID, valid_project_id
from backend.web.errors import ApiError

#: Label Studio's ids are 32-bit database keys; anything larger is not one of theirs.
MAX_ID = MAX_PROJECT_ID


def id_from_digits(text: str) -> int | None:
    """``text`` as an id when it is 1 to 10 ASCII digits within range, else None."""
    return int(text) if valid_project_id(text) else None


def bounded_id(raw: Any, *, field: str) -> int:
    """A JSON integer id (not a bool, not a float) from 1 to ``MAX_ID``; 400 naming ``field``."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw <= MAX_ID:
        return raw
    raise ApiError(f"'{field}' must be an integer id from 1 to {MAX_ID}", field=field)


def project_id_of(raw: Any, *, field: str = "project") -> int:
    """Label Studio sends ``"<id>.<created-timestamp>"`` to ML endpoints and plain ids elsewhere."""
    if isinstance(raw, str):
        raw = id_from_digits(raw.split(".", 1)[0])
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw <= MAX_ID:
        return raw
    raise ApiError(f"'{field}' must be a project id from 1 to {MAX_ID} or '<id>.<timestamp>'",
                   field=field)


MAX_IDS_PER_CALL = 100_000


def parse_task_ids(raw: object) -> list[int]:
    """A ``task_ids`` list from a request: non-empty, at most ``MAX_IDS_PER_CALL``, each an id."""
    if not isinstance(raw, list) or not raw:
        raise ApiError("'task_ids' must be a non-empty list of task ids", field="task_ids")
    if len(raw) > MAX_IDS_PER_CALL:
        raise ApiError(f"at most {MAX_IDS_PER_CALL} task ids per call", field="task_ids", status=413)
    bad = [v for v in raw if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_ID]
    if bad:
        raise ApiError(f"'task_ids' must hold integer ids from 1 to {MAX_ID}; got {bad[:3]!r}", field="task_ids")
    return sorted(set(raw))


class InvalidUrlId(BadRequest):
    """A URL id outside the rule. Raised while routing, so Flask answers it after the auth check
    (``before_request``), as JSON naming the URL field (see ``backend/web/app.py``)."""

    def __init__(self, field: str):
        super().__init__(f"'{field}' in the URL must be an id from 1 to {MAX_ID} (ASCII digits)")
        self.field = field


class ProjectIdConverter(BaseConverter):
    """``<project_id:project_id>``: any path segment, refused with a 400 unless it is an id."""

    regex = "[^/]+"
    part_isolating = True

    def to_python(self, value: str) -> int:
        parsed = id_from_digits(value)
        if parsed is None:
            raise InvalidUrlId("project_id")
        return parsed

    def to_url(self, value: Any) -> str:
        return str(int(value))
