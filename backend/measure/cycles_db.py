"""Persistent record of every selection cycle, production feedback and loop measurements.

``queue.json`` only ever holds the latest batch; measuring the loop needs every batch, with
what the model in service predicted for each queued task before anyone labelled it. This
module keeps that history in one SQLite file, ``<data dir>/labelqueue.sqlite3`` (standard
library ``sqlite3``, WAL journal so several gunicorn workers and the CLI can read while one
writes; every write is one short transaction and writers wait up to 30 s for each other).

Schema (``PRAGMA user_version`` = 2; a version-1 file gains ``queue_items.reason`` on open)::

    cycles          one row per written queue
        project_id, cycle          INTEGER  primary key
        model_version              TEXT     model in service when the batch was composed (NULL: none)
        created_at                 TEXT     ISO time the queue was written
        labelled                   INTEGER  size of that model's training set
        size_requested             INTEGER
        mix, counts                TEXT     JSON: slice shares used, tasks per slice
    queue_items     one row per queued task
        project_id, cycle, task_id INTEGER  primary key
        slice                      TEXT     uncertain | diverse | failure | control
        rank                       INTEGER
        predicted                  TEXT     JSON list of labels the model predicted (NULL: no model)
        score                      REAL     probability of its top label
        reason                     TEXT     JSON: why the task was picked, e.g. {"source": "flagged"}
                                            (NULL in cycles recorded before version 2)
    trained_labels  when each label first entered a model's training set
        project_id, task_id        INTEGER  primary key
        cycle                      INTEGER  first cycle whose model in service was trained on it
    feedback        production feedback (POST /projects/<id>/feedback)
        id INTEGER primary key; project_id, task_id (NULL), text (NULL), model_version,
        predicted, correct (JSON lists), received_at
    control_overlap annotations per control task asked of Label Studio
        project_id, task_id        INTEGER  primary key
        cycle, overlap             INTEGER
    mix_changes     automatic lowering of the uncertain share
        project_id, cycle          INTEGER  primary key
        changed_at, old_mix, new_mix (JSON), reason
    measurements    latest loop measurement per project
        project_id                 INTEGER  primary key
        measured_at                TEXT
        payload                    TEXT     JSON (backend/measure/measurement_record.py)
        report_html                TEXT     the rendered report

Rows are read back as ``backend/loop/queue_record.QueueRecord``, the record the cycle writes,
and measurements as ``backend/measure/measurement_record.Measurement``.
Each item's reason is kept because the report must tell a flagged production failure from an
override neighbour; both are queued in the ``failure`` slice.
Cycle numbers come from ``queue.json``; if that file is deleted the count restarts at 1 and a
new cycle 1 replaces the old one's row and items. If the SQLite file itself is deleted, the next
call recreates an empty schema (the history is lost, the backend keeps working); a file that is
not a database raises :class:`CyclesDBError` naming it, which the HTTP edge answers with 503.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from backend.ids import require_project_id
from backend.layout import DB_NAME
from backend.loop.queue_record import QueuedTask, QueueRecord, label_from_json
from backend.measure.measurement_record import Measurement

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cycles (
    project_id INTEGER NOT NULL, cycle INTEGER NOT NULL, model_version TEXT, created_at TEXT NOT NULL,
    labelled INTEGER NOT NULL, size_requested INTEGER, mix TEXT NOT NULL, counts TEXT NOT NULL,
    PRIMARY KEY (project_id, cycle));
CREATE TABLE IF NOT EXISTS queue_items (
    project_id INTEGER NOT NULL, cycle INTEGER NOT NULL, task_id INTEGER NOT NULL, slice TEXT NOT NULL,
    rank INTEGER NOT NULL, predicted TEXT, score REAL, reason TEXT,
    PRIMARY KEY (project_id, cycle, task_id));
CREATE INDEX IF NOT EXISTS queue_items_by_task ON queue_items (project_id, task_id);
CREATE TABLE IF NOT EXISTS trained_labels (
    project_id INTEGER NOT NULL, task_id INTEGER NOT NULL, cycle INTEGER NOT NULL,
    PRIMARY KEY (project_id, task_id));
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, task_id INTEGER, text TEXT,
    model_version TEXT NOT NULL, predicted TEXT NOT NULL, correct TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_by_project ON feedback (project_id);
CREATE TABLE IF NOT EXISTS control_overlap (
    project_id INTEGER NOT NULL, task_id INTEGER NOT NULL, cycle INTEGER NOT NULL, overlap INTEGER NOT NULL,
    PRIMARY KEY (project_id, task_id));
CREATE TABLE IF NOT EXISTS mix_changes (
    project_id INTEGER NOT NULL, cycle INTEGER NOT NULL, changed_at TEXT NOT NULL, old_mix TEXT NOT NULL,
    new_mix TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (project_id, cycle));
CREATE TABLE IF NOT EXISTS measurements (
    project_id INTEGER PRIMARY KEY, measured_at TEXT NOT NULL, payload TEXT NOT NULL, report_html TEXT);
"""


class CyclesDBError(RuntimeError):
    """The database cannot be used: not an SQLite file, damaged, or written by a newer
    labelqueue (a schema version we do not know). The message names the file."""


class NewerSchemaError(CyclesDBError):
    """The database was written by a newer labelqueue: start-up stops rather than guess."""


@dataclass(frozen=True)
class Feedback:
    """One production outcome: what a model version predicted and what was correct."""

    model_version: str
    predicted: tuple[str, ...]
    correct: tuple[str, ...]
    task_id: int | None = None
    text: str | None = None
    received_at: str = ""

    @property
    def wrong(self) -> bool:
        return set(self.predicted) != set(self.correct)


def _valid_project(method: Callable[..., T]) -> Callable[..., T]:
    """Refuse a project id outside Label Studio's range before it reaches SQLite (``InvalidProjectId``)."""
    @functools.wraps(method)
    def checked(self: CyclesDB, project_id: int, *args: Any, **kwargs: Any) -> T:
        return method(self, require_project_id(project_id), *args, **kwargs)
    return checked


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


class CyclesDB:
    """One SQLite file shared by every worker process; a connection per call, so threads never
    share one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._create_schema()
        except NewerSchemaError:
            raise
        except CyclesDBError as exc:  # the server still starts; measurement answers 503 until fixed
            logger.error("%s", exc)

    def _create_schema(self) -> None:
        """Create the tables if missing (first start, or the file was deleted meanwhile)."""
        if not self.path.exists():  # a journal left by a deleted file belongs to no database
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        conn = self._open()
        try:
            with conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise NewerSchemaError(f"{self.path} has schema version {version}; this labelqueue knows "
                                        f"{SCHEMA_VERSION}. Upgrade labelqueue or point LABELQUEUE_DATA_DIR elsewhere")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(SCHEMA)
                if version == 1:  # cycles recorded before reasons were kept read back with reason {}
                    conn.execute("ALTER TABLE queue_items ADD COLUMN reason TEXT")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise CyclesDBError(f"{self.path} is not a usable labelqueue database ({exc}); move it away "
                                "and a new one is created") from None
        finally:
            conn.close()
        os.chmod(self.path, 0o600)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> CyclesDB:
        return cls(Path(data_dir) / DB_NAME)

    def _open(self) -> sqlite3.Connection:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # owner-only from the first byte
        os.close(fd)
        return sqlite3.connect(self.path, timeout=30)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed on success and rolled back on error. A database file that
        is gone or empty gets its schema back first; SQLite's own errors leave as
        :class:`CyclesDBError` naming the file."""
        try:
            if not self.path.exists() or self.path.stat().st_size == 0:
                logger.warning("%s is missing or empty; recreating its schema", self.path)
                self._create_schema()
        except OSError as exc:
            raise CyclesDBError(f"{self.path}: {exc.strerror or exc}") from None
        conn = self._open()
        try:
            with conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            raise CyclesDBError(f"{self.path}: {exc}") from None
        finally:
            conn.close()

    @_valid_project
    def record_queue(self, project_id: int, queue: QueueRecord, trained: Iterable[int]) -> int:
        """Record a written queue and which labels its model was trained on; returns how many of
        those labels no earlier cycle's model had."""
        cycle = queue.cycle
        with self._connect() as conn:
            conn.execute("DELETE FROM queue_items WHERE project_id = ? AND cycle = ?", (project_id, cycle))
            conn.execute("INSERT OR REPLACE INTO cycles VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (
                project_id, cycle, queue.model_version, queue.created_at, queue.labelled, queue.size_requested,
                json.dumps(queue.mix), json.dumps(queue.counts)))
            conn.executemany("INSERT INTO queue_items (project_id, cycle, task_id, slice, rank, predicted, score, "
                             "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
                (project_id, cycle, item.task_id, item.slice, item.rank,
                 json.dumps(list(item.predicted)) if item.predicted is not None else None, item.score,
                 json.dumps(item.reason))
                for item in queue.items])
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO trained_labels VALUES (?, ?, ?)",
                             [(project_id, int(task_id), cycle) for task_id in trained])
            return conn.total_changes - before

    @_valid_project
    def cycles(self, project_id: int) -> list[QueueRecord]:
        """Every recorded cycle of a project with its queued items, oldest first (without the
        tab id, which is not kept)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT cycle, model_version, created_at, labelled, size_requested, mix, counts "
                                "FROM cycles WHERE project_id = ? ORDER BY cycle", (project_id,)).fetchall()
            items: dict[int, list[QueuedTask]] = {}
            for cycle, task_id, slice_, rank, predicted, score, reason in conn.execute(
                    "SELECT cycle, task_id, slice, rank, predicted, score, reason FROM queue_items "
                    "WHERE project_id = ? ORDER BY cycle, rank", (project_id,)):
                labels = label_from_json(json.loads(predicted)) if predicted is not None else None
                items.setdefault(cycle, []).append(
                    QueuedTask(task_id, slice_, rank, json.loads(reason) if reason else {}, labels, score))
        return [QueueRecord(cycle=cycle, model_version=version, created_at=created, labelled=labelled,
                            counts=json.loads(counts), mix=json.loads(mix), size_requested=size,
                            items=tuple(items.get(cycle, ())))
                for cycle, version, created, labelled, size, mix, counts in rows]

    @_valid_project
    def trained_labels(self, project_id: int) -> dict[int, int]:
        """Task id -> the first cycle whose model was trained on its label."""
        with self._connect() as conn:
            return dict(conn.execute("SELECT task_id, cycle FROM trained_labels WHERE project_id = ?",
                                     (project_id,)).fetchall())

    @_valid_project
    def add_feedback(self, project_id: int, item: Feedback) -> int:
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT INTO feedback (project_id, task_id, text, model_version, predicted, correct, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (project_id, item.task_id, item.text, item.model_version,
                                                 json.dumps(item.predicted), json.dumps(item.correct),
                                                 item.received_at or now()))
            return int(cursor.lastrowid)

    @_valid_project
    def feedback(self, project_id: int) -> list[Feedback]:
        with self._connect() as conn:
            rows = conn.execute("SELECT model_version, predicted, correct, task_id, text, received_at FROM feedback "
                                "WHERE project_id = ? ORDER BY id", (project_id,)).fetchall()
        return [Feedback(version, tuple(json.loads(p)), tuple(json.loads(c)), task_id, text, received)
                for version, p, c, task_id, text, received in rows]

    @_valid_project
    def request_overlap(self, project_id: int, cycle: int, task_ids: Iterable[int], overlap: int) -> None:
        with self._connect() as conn:
            conn.executemany("INSERT OR REPLACE INTO control_overlap VALUES (?, ?, ?, ?)",
                             [(project_id, int(t), cycle, overlap) for t in task_ids])

    @_valid_project
    def last_overlap_cycle(self, project_id: int) -> int | None:
        """The newest cycle whose control tasks were given an overlap."""
        with self._connect() as conn:
            return conn.execute("SELECT MAX(cycle) FROM control_overlap WHERE project_id = ?",
                                (project_id,)).fetchone()[0]

    @_valid_project
    def overlap_requested(self, project_id: int) -> dict[int, int]:
        """Task id -> annotations per task asked of Label Studio."""
        with self._connect() as conn:
            return dict(conn.execute("SELECT task_id, overlap FROM control_overlap WHERE project_id = ?",
                                     (project_id,)).fetchall())

    @_valid_project
    def record_mix_change(self, project_id: int, cycle: int, old: dict, new: dict, reason: str) -> None:
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO mix_changes VALUES (?, ?, ?, ?, ?, ?)",
                         (project_id, cycle, now(), json.dumps(old), json.dumps(new), reason))

    @_valid_project
    def mix_changes(self, project_id: int) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT cycle, changed_at, old_mix, new_mix, reason FROM mix_changes "
                                "WHERE project_id = ? ORDER BY cycle", (project_id,)).fetchall()
        return [{"cycle": c, "changed_at": at, "old_mix": json.loads(o), "new_mix": json.loads(n), "reason": r}
                for c, at, o, n, r in rows]

    @_valid_project
    def save_measurement(self, project_id: int, measurement: Measurement, report_html: str | None) -> None:
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?)",
                         (project_id, measurement.measured_at, json.dumps(measurement.to_json()), report_html))

    @_valid_project
    def measurement(self, project_id: int) -> Measurement | None:
        with self._connect() as conn:
            row = conn.execute("SELECT payload FROM measurements WHERE project_id = ?", (project_id,)).fetchone()
        return Measurement.from_json(json.loads(row[0])) if row else None

    @_valid_project
    def report_html(self, project_id: int) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT report_html FROM measurements WHERE project_id = ?", (project_id,)).fetchone()
        return row[0] if row else None
