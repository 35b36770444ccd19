"""Tasks flagged as production failures by people or systems (the failure slice's first source).

Flags arrive through ``POST /projects/<id>/failures`` (ids checked at the edge, ``backend/web/ids.py``)
or ``labelqueue failures add``; both write
``projects/<id>/failures.json`` under the project's ``failures`` lock, so concurrent writers from
several worker processes never lose each other's flags. Tasks matching
``LABELQUEUE_FAILURE_FIELD`` are flagged by the pool cache instead and need no entry here.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone

from backend.store import ModelStore, atomic_write_json


class FailureLog:
    """Read and extend each project's flagged-failure list."""

    def __init__(self, store: ModelStore):
        self.store = store

    def _path(self, project_id: int):
        return self.store.project_dir(project_id) / "failures.json"

    def read(self, project_id: int) -> dict[int, dict]:
        """Task id -> {"source", "flagged_at"}."""
        try:
            return {int(k): v for k, v in json.loads(self._path(project_id).read_text()).items()}
        except (OSError, ValueError):
            return {}

    def add(self, project_id: int, task_ids: Iterable[int], source: str) -> int:
        """Flag tasks; returns how many were not flagged before."""
        with self.store.lock(project_id, "failures"):
            flagged = self.read(project_id)
            now = datetime.now(timezone.utc).isoformat()
            new = {int(t) for t in task_ids} - set(flagged)
            flagged.update({t: {"source": source, "flagged_at": now} for t in new})
            atomic_write_json(self._path(project_id), {str(k): v for k, v in sorted(flagged.items())})
            return len(new)
