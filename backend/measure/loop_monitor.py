"""Keeps each project's loop measurement current, in the background, and answers for it cheaply.

The cycle hands every written queue to :meth:`LoopMonitor.record_queue` (its ``recorder``),
which stores it in SQLite; the selection job's ``after`` step :meth:`LoopMonitor.after_cycle`
then requests a *measure* job. The job reads the project's annotations from
Label Studio once, asks for overlap on new control tasks, measures every cycle, lowers the
uncertain share if warranted and allowed, renders the report and stores measurement and page.
``/metrics`` and ``GET /projects/<id>/report`` then only read SQLite; no request waits on
Label Studio or matplotlib.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from backend.jobs.backends import JobBackend
from backend.labelstudio.gateway import Connections, LabelStudioGateway
from backend.layout import NOT_CONNECTED
from backend.loop.mix_adjustment import save_adjustment
from backend.loop.project_options import ProjectOptionsStore
from backend.loop.queue_record import QueueRecord
from backend.measure.control_overlap import apply_control_overlap
from backend.measure.cycles_db import CyclesDB
from backend.measure.measurement import AnnotatedTask, LoopConfig, measure_loop, read_annotated
from backend.measure.measurement_record import Measurement
from backend.measure.report import render_report
from backend.model.labelconfig import TaskSpec, kind_of
from backend.outcome import JobOutcome
from backend.settings import Settings
from backend.store import ModelStore
from selection.loop_warnings import lowered_mix
from selection.mix import SliceMix

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Measured:
    measurement: Measurement
    html: str


class LoopMonitor:
    def __init__(self, settings: Settings, store: ModelStore, connections: Connections, options: ProjectOptionsStore,
                 jobs: JobBackend):
        self.settings = settings
        self.store = store
        self.connections = connections
        self.options = options
        self.db = CyclesDB.in_data_dir(settings.data_dir)
        self.config = LoopConfig.from_settings(settings)
        self.jobs = jobs.scheduler("measure", self.refresh, threads=1)

    def record_queue(self, project_id: int, queue: QueueRecord, trained: Collection[int]) -> None:
        """The cycle's recorder: store the written queue and the training set of the model it
        was scored with (``trained``, as the cycle read it) in SQLite.

        Never raises: a measurement problem must not fail the selection cycle that called it
        (the scheduler would retry the whole cycle and rewrite the queue).
        """
        try:
            added = self.db.record_queue(project_id, queue, trained)
            logger.info("project %s: recorded cycle %s (%d new labels in training)", project_id, queue.cycle, added)
        except Exception:
            logger.exception("project %s: could not record cycle %s", project_id, queue.cycle)

    def after_cycle(self, outcome: JobOutcome) -> None:
        """The step after a selection that wrote a queue: measure in the background."""
        self.jobs.request(outcome.project_id)

    def measure(self, project_id: int) -> Measured:
        """Measure now and render, without writing anything (the CLI's ``report``)."""
        _, tasks, cycles, spec = self._read(project_id)
        measurement = self._measure(project_id, spec, cycles, tasks)
        return Measured(measurement, render_report(measurement))

    def refresh(self, project_id: int, force: bool = False) -> JobOutcome:
        """The background job (``force`` is the scheduler's flag; every run measures).

        Runs under the project's ``measure`` lock: two worker processes measuring at once could
        otherwise store an older measurement over a newer one.
        """
        if not self.store.exists(project_id):
            return JobOutcome(project_id, False, NOT_CONNECTED)
        with self.store.lock(project_id, "measure"):
            return self._refresh_locked(project_id)

    def _refresh_locked(self, project_id: int) -> JobOutcome:
        started = time.monotonic()
        gateway, tasks, cycles, spec = self._read(project_id)
        if not cycles:
            return JobOutcome(project_id, False, "no cycle recorded yet")
        overlap = self.options.get(project_id).control_overlap
        if overlap > 1 or self.db.overlap_requested(project_id):
            with self.store.lock(project_id, "tasks"):  # after any queue write in progress, and its cycle
                apply_control_overlap(gateway, self.db, self.db.cycles(project_id), tasks, overlap)
        measurement = self._measure(project_id, spec, cycles, tasks)
        if self.settings.auto_adjust_mix and self.adjust_mix(project_id, cycles[-1].cycle, measurement):
            measurement = self._measure(project_id, spec, cycles, tasks)
        self.db.save_measurement(project_id, measurement, render_report(measurement))
        seconds = time.monotonic() - started
        return JobOutcome(project_id, True, f"measured {len(cycles)} cycles", figures={
            "cycles": len(cycles), "warnings": len(measurement.warnings), "seconds": round(seconds, 3)})

    def _read(self, project_id: int) -> tuple[LabelStudioGateway, dict[int, AnnotatedTask], list[QueueRecord],
                                              TaskSpec]:
        gateway = self.connections.gateway(project_id)
        spec = gateway.spec()
        return gateway, read_annotated(gateway, spec), self.db.cycles(project_id), spec

    def _measure(self, project_id: int, spec: TaskSpec, cycles: list[QueueRecord],
                 tasks: dict[int, AnnotatedTask]) -> Measurement:
        return measure_loop(project_id, spec.labels, cycles, tasks, self.db.trained_labels(project_id),
                            self.db.feedback(project_id), self.config, self.db.mix_changes(project_id),
                            kind=kind_of(spec))

    def adjust_mix(self, project_id: int, cycle: int, measurement: Measurement) -> bool:
        """Lower the uncertain share one step when labels on it are getting noisier; at most once
        per ``gain_patience`` cycles, so each change can show its effect first."""
        warning = next((w for w in measurement.warnings if w["code"] == "noisy_uncertain_labels"), None)
        recent = [c for c in measurement.mix_changes if c["cycle"] > cycle - self.settings.gain_patience]
        if warning is None or recent:
            return False
        current = self.options.get(project_id).mix
        if current is None:  # the share schedule: step down from the mix of the latest batch
            latest = measurement.cycles[-1].get("mix") if measurement.cycles else None
            if not latest:
                return False
            current = SliceMix.from_mapping(latest)
        lowered = lowered_mix(current)
        if lowered is None:
            return False
        save_adjustment(self.store, project_id, self.options.admin_options(project_id).mix, lowered)
        self.db.record_mix_change(project_id, cycle, asdict(current), asdict(lowered), warning["message"])
        logger.warning("project %s: uncertain share lowered from %.2f to %.2f: %s", project_id, current.uncertain,
                       lowered.uncertain, warning["message"])
        return True

    def summary(self, project_id: int) -> dict[str, Any] | None:
        """The ``loop`` entry of ``/metrics``: one SQLite read, no Label Studio call."""
        job = self.jobs.snapshot().get(project_id)
        found = self.db.measurement(project_id)
        if found is None:
            return {"measured_at": None, "job": job} if job else None
        return found.summary(job)
