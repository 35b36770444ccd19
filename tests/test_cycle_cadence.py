"""When a retrain leads to a new batch: the cadence rule of ``backend/loop/cycle.py``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from backend.loop.cycle import refill_reason
from backend.loop.queue_record import QueueRecord
from backend.settings import Settings

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
SETTINGS = Settings(refill_at=0.8, stale_hours=24)


def queue(labelled: int, *, model: str = "v1", hours_old: float = 1.0, size: int = 10) -> QueueRecord:
    return QueueRecord.from_json({
        "cycle": 3, "model_version": model, "labelled": labelled,
        "created_at": (NOW - timedelta(hours=hours_old)).isoformat(),
        "items": [{"task_id": task_id, "slice": "uncertain", "rank": task_id + 1} for task_id in range(size)]})


def test_first_retrain_composes_the_first_batch():
    assert refill_reason(None, "v1", set(), SETTINGS, NOW) == "no batch yet"


def test_half_labelled_batch_stays_after_a_retrain():
    assert refill_reason(queue(0), "v2", set(range(5)), SETTINGS, NOW) is None


def test_mostly_labelled_batch_is_refilled():
    assert "8 of 10" in refill_reason(queue(0), "v2", set(range(8)), SETTINGS, NOW)


def test_stale_batch_with_a_newer_model_is_refilled():
    assert "older than 24 h" in refill_reason(queue(0, hours_old=25), "v2", {1}, SETTINGS, NOW)


def test_old_batch_with_the_same_model_stays():
    assert refill_reason(queue(0, hours_old=25), "v1", {1}, SETTINGS, NOW) is None


def test_nothing_changed_since_the_batch_was_composed_is_never_refilled():
    assert refill_reason(queue(10), "v1", set(range(10)), SETTINGS, NOW) is None
