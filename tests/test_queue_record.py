"""The queue record keeps ``queue.json`` and the API's shapes as they were before it was typed."""
from __future__ import annotations

from backend.loop.queue_record import QueueRecord

#: A ``queue.json`` as the cycle wrote it before the record was typed: one item with the model's
#: prediction, one composed without a model (no ``predicted``/``score`` keys at all).
WRITTEN = {"cycle": 3, "model_version": "v2-x", "labelled": 40, "created_at": "2026-01-01T00:00:00+00:00",
           "tab_id": 7, "counts": {"uncertain": 1, "control": 1}, "size_requested": 2,
           "mix": {"uncertain": 0.55, "diverse": 0.25, "failure": 0.15, "control": 0.05},
           "items": [{"task_id": 11, "slice": "uncertain", "rank": 1, "reason": {"margin": 0.1},
                      "predicted": ["a"], "score": 0.51},
                     {"task_id": 12, "slice": "control", "rank": 2, "reason": {}}]}


def test_queue_json_reads_and_writes_back_unchanged():
    assert QueueRecord.from_json(WRITTEN).to_json() == WRITTEN


def test_the_api_serves_the_summary_and_the_items():
    record = QueueRecord.from_json(WRITTEN)
    assert record.to_api() == {key: WRITTEN[key] for key in ("cycle", "model_version", "created_at", "counts", "items")}
    assert record.summary() == {key: WRITTEN[key] for key in ("cycle", "model_version", "created_at", "counts")}
