"""The record of one written queue: shared by the cycle that writes it (``queue.json``), the
cycles database that keeps every one (``backend/measure/cycles_db.py``) and the API that serves
it (``GET /projects/<id>/queue``, the ``queue`` entry of ``/metrics``).

``to_json`` is the shape on disk and on the wire; ``from_json`` reads it back. The SQLite
history does not keep the queue tab's id, which reads back as ``None`` from there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QueuedTask:
    """One task of a queue; ``predicted``/``score`` are what the model in service said before
    anyone labelled it (``None`` when the queue was composed without a model)."""

    task_id: int
    slice: str
    rank: int
    reason: dict[str, Any] = field(default_factory=dict)
    predicted: tuple[str, ...] | None = None
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        found = {"task_id": self.task_id, "slice": self.slice, "rank": self.rank, "reason": self.reason}
        if self.predicted is not None:
            found.update(predicted=list(self.predicted), score=self.score)
        return found

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> QueuedTask:
        predicted = raw.get("predicted")
        return cls(int(raw["task_id"]), str(raw["slice"]), int(raw["rank"]), dict(raw.get("reason") or {}),
                   label_from_json(predicted) if predicted is not None else None, raw.get("score"))


def label_from_json(raw: list) -> tuple:
    """A label back from JSON (``queue.json``, SQLite): lists become tuples again (a span label
    is a tuple of spans), so labels compare and hash alike wherever they were read from."""
    return tuple(label_from_json(x) if isinstance(x, list) else x for x in raw)


@dataclass(frozen=True)
class QueueRecord:
    """One cycle's queue.

    Attributes
    ----------
    cycle : 1, 2, ... per project.
    model_version : the model in service when the batch was composed (``None``: none yet).
    created_at : ISO time the queue was written.
    labelled : the size of that model's training set.
    counts : tasks per slice; mix : the slice shares used; size_requested : the batch size asked.
    tab_id : the Label Studio tab holding the queue.
    items : the queued tasks in rank order.
    """

    cycle: int
    model_version: str | None
    created_at: str
    labelled: int
    counts: dict[str, int]
    mix: dict[str, float]
    size_requested: int | None = None
    tab_id: int | None = None
    items: tuple[QueuedTask, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The ``queue`` entry of ``/metrics``."""
        return {"cycle": self.cycle, "model_version": self.model_version, "created_at": self.created_at,
                "counts": self.counts}

    def to_api(self) -> dict[str, Any]:
        """``GET /projects/<id>/queue``: the summary and the items."""
        return {**self.summary(), "items": [item.to_json() for item in self.items]}

    def to_json(self) -> dict[str, Any]:
        """``queue.json``."""
        return {"cycle": self.cycle, "model_version": self.model_version, "labelled": self.labelled,
                "created_at": self.created_at, "tab_id": self.tab_id, "counts": self.counts,
                "size_requested": self.size_requested, "mix": self.mix,
                "items": [item.to_json() for item in self.items]}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> QueueRecord:
        return cls(cycle=int(raw["cycle"]), model_version=raw.get("model_version"), created_at=raw["created_at"],
                   labelled=int(raw["labelled"]), counts=dict(raw.get("counts") or {}), mix=dict(raw.get("mix") or {}),
                   size_requested=raw.get("size_requested"), tab_id=raw.get("tab_id"),
                   items=tuple(QueuedTask.from_json(item) for item in raw.get("items") or ()))
