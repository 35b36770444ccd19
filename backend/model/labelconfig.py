"""The task kinds the backend serves, and the switch from a parsed config to its kind.

A config is parsed by :func:`backend.labelstudio.label_config.parse_label_config` (Label Studio's
own parser, kept in the gateway); it tries each kind in ``KINDS`` in order and the first that
finds its control in the config serves it (``backend/model/task_kind.py`` describes the seam).
"""
from __future__ import annotations

from backend.model.classification import Classification
from backend.model.spans import Spans
from backend.model.task_kind import TaskKind, TaskSpec

__all__ = ["KINDS", "TaskKind", "TaskSpec", "kind_of"]


#: The task kinds served, tried in order; the first that finds its control in a config serves it.
KINDS: tuple[TaskKind, ...] = (Classification(), Spans())
_BY_NAME = {kind.name: kind for kind in KINDS}


def kind_of(spec: TaskSpec) -> TaskKind:
    """The task kind that parsed ``spec``: the runtime's one switch between kinds."""
    return _BY_NAME[spec.kind]
