"""Tasks flagged as production failures by people or systems (the failure slice's first source).

Flags arrive through ``POST /projects/<id>/failures`` (ids checked at the edge, ``backend/web/ids.py``)
or ``labelqueue failures add``; both write
``projects/<id>/failures.json`` under the project's ``failures`` lock, so concurrent writers from
several worker processes never lose each other's flags. Tasks matching
``LABELQUEUE_FAILURE_FIELD`` are flagged by the pool cache instead and need no entry here.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from backend.layout import StateFileError, read_state
from backend.store import ModelStore, atomic_write_json

#: Label Studio's task ids are 64-bit database keys (the edge admits 1..2**31-1; reading is lenient).
MAX_TASK_ID = 2**63 - 1


class FailureLog:
    """Read and extend each project's flagged-failure list."""

    def __init__(self, store: ModelStore):
        self.store = store

    def read(self, project_id: int) -> dict[int, dict]:
        """Task id -> {"source", "flagged_at"}. A malformed file raises :class:`StateFileError`
        rather than reading as empty, which the next :meth:`add` would write back, losing flags."""
        path = self.store.layout.failures(project_id)
        raw = read_state(path) or {}
        try:
            return {int(k): v for k, v in raw.items() if 0 < int(k) <= MAX_TASK_ID}
        except ValueError:
            raise StateFileError(path, "keys are not task ids") from None

    def add(self, project_id: int, task_ids: Iterable[int], source: str) -> int:
        """Flag tasks; returns how many were not flagged before. An authenticated admin write, so
        it creates the project if needed (within ``LABELQUEUE_MAX_PROJECTS``)."""
        self.store.create_project(project_id)
        with self.store.lock(project_id, "failures"):
            flagged = self.read(project_id)
            now = datetime.now(timezone.utc).isoformat()
            new = {int(t) for t in task_ids} - set(flagged)
            flagged.update({t: {"source": source, "flagged_at": now} for t in new})
            atomic_write_json(self.store.layout.failures(project_id), {str(k): v for k, v in sorted(flagged.items())})
            return len(new)
