"""The long-lived objects one backend process needs, built once by ``create_app`` (and once by
each ``labelqueue worker``).

Kept in ``app.extensions`` instead of module globals so tests can run several apps with
different data dirs side by side. Three schedulers run the background work: ``retrains``
(annotation webhooks), ``selections`` (after each new model, and on demand) and ``pool_syncs``
(``TASKS_CREATED`` / ``TASKS_DELETED``); the loop monitor has a fourth (``measure``). Whether
they run on this process's threads or on RQ workers is the job backend's business
(``backend/jobs/backends.py``): the code here is the same in both modes.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from backend.loop.cycle import CycleContext, CycleReport, read_queue, run_cycle
from backend.loop.failures import FailureLog
from backend.jobs.backends import JobBackend, JobScheduler, job_backend, open_store
from backend.jobs.errors import JobQueueUnavailable
from backend.layout import NOT_CONNECTED, StateFileError, read_state
from backend.model.labelconfig import parse_label_config
from backend.labelstudio.gateway import Connections
from backend.measure.cycles_db import CyclesDBError
from backend.measure.loop_monitor import LoopMonitor
from backend.loop.pool_cache import PoolCache
from backend.loop.project_options import ProjectOptionsStore
from backend.settings import Settings
from backend.store import ModelCache, atomic_write_json
from backend.loop.training import TrainOutcome, read_labelled, retrain

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class PoolSyncOutcome:
    project_id: int
    done: bool
    reason: str


@dataclass
class Runtime(CycleContext):
    """Everything a selection cycle needs (inherited) plus the background job schedulers."""

    jobs: JobBackend = field(init=False)
    retrains: JobScheduler = field(init=False)
    selections: JobScheduler = field(init=False)
    pool_syncs: JobScheduler = field(init=False)
    loop: LoopMonitor = field(init=False)

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        jobs = job_backend(settings)
        store = open_store(settings, jobs)
        rt = cls(settings=settings, store=store, models=ModelCache(store),
                 connections=Connections(settings, store),
                 pool_cache=PoolCache(store, seed=settings.seed, failure_field=settings.failure_field),
                 failures=FailureLog(store), options=ProjectOptionsStore(settings, store),
                 scorer=jobs.scorer(store))
        rt.jobs = jobs
        rt.selections = jobs.scheduler("select", rt.select, threads=settings.train_threads)
        after = [lambda outcome: rt.selections.request(outcome.project_id)] if settings.select_after_retrain else []
        rt.retrains = jobs.scheduler("retrain", rt.retrain_locked, threads=settings.train_threads, after=after)
        rt.pool_syncs = jobs.scheduler("pool-sync", rt.sync_pool, threads=1)
        rt.loop = LoopMonitor(settings, store, rt.connections, rt.options, jobs)
        rt.after_write.append(rt.loop.record_queue)
        return rt

    def request_retrain(self, project_id: int, *, force: bool = False) -> str:
        """Schedule a retrain, first recording it on disk so a crash cannot lose it. Only for a
        project that exists (:class:`ProjectNotFound` otherwise): a forged webhook naming any id
        leaves no marker and no job behind."""
        self.store.layout.require(project_id)
        marker = self.store.layout.retrain_pending(project_id)
        if not marker.exists() or force:
            atomic_write_json(marker, {"force": force})
        return self.retrains.request(project_id, force=force)

    def request_selection(self, project_id: int) -> str:
        """Compose a new batch now, for a project that exists."""
        self.store.layout.require(project_id)
        return self.selections.request(project_id, force=True)

    def request_pool_sync(self, project_id: int, *, reconcile: bool) -> str:
        self.store.layout.require(project_id)
        return self.pool_syncs.request(project_id, force=reconcile)

    def request_measure(self, project_id: int) -> str:
        self.store.layout.require(project_id)
        return self.loop.jobs.request(project_id)

    def resume_interrupted(self, *, idle_only: bool = False) -> list[int]:
        """Re-request retrains that were requested but never finished (crash, kill -9, a request
        refused while Redis was down). ``idle_only``: skip projects whose retrain is queued,
        running, backing off, or failed on a bug (the workers' periodic check must not rerun a
        failing retrain every few seconds; a restart or the next webhook tries it again)."""
        resumed = []
        busy = {pid for pid, s in self.retrains.snapshot().items() if s["state"] != "idle"} if idle_only else set()
        for project_id in sorted(self.known_projects() - busy):
            try:
                pending = read_state(self.store.layout.retrain_pending(project_id))
            except StateFileError as exc:  # a torn marker still means a retrain was requested
                logger.warning("project %s: %s; resuming the retrain anyway", project_id, exc)
                pending = {"force": False}
            if pending is None:
                continue
            force = bool(pending.get("force"))
            logger.info("project %s: resuming a retrain interrupted before it finished", project_id)
            try:
                self.retrains.request(project_id, force=force)
            except JobQueueUnavailable as exc:  # the marker stays; the next start tries again
                logger.error("project %s: cannot resume the retrain now: %s", project_id, exc)
                continue
            resumed.append(project_id)
        return resumed

    def retrain_locked(self, project_id: int, force: bool) -> TrainOutcome:
        """Retrain under the project's ``train`` lock, so other processes wait their turn; first
        give Label Studio a moment to commit the annotation whose webhook asked for it."""
        if not self.store.exists(project_id):
            return TrainOutcome(project_id, False, NOT_CONNECTED)
        time.sleep(self.settings.retrain_settle_seconds)
        with self.store.lock(project_id, "train"):
            outcome = retrain(project_id, settings=self.settings, store=self.store,
                              connections=self.connections, force=force)
            if not self.retrains.has_pending(project_id):
                self.store.layout.retrain_pending(project_id).unlink(missing_ok=True)
            return outcome

    def degraded(self) -> str | None:
        """Why background work is failing, for ``/health``; None when all is well."""
        backend = self.jobs.problem()
        if backend:
            return backend
        problems = [f"project {pid} {s.name}: {reason}" for s in (self.retrains, self.selections, self.pool_syncs)
                    for pid, reason in s.degraded().items()]
        return "; ".join(problems) or None

    def select(self, project_id: int, force: bool = False) -> CycleReport:
        """``force``: on demand (always compose); otherwise after a retrain (skip if current)."""
        if not self.store.exists(project_id):
            return CycleReport(project_id, False, NOT_CONNECTED)
        return run_cycle(self, project_id, force=force)

    def sync_pool(self, project_id: int, reconcile: bool) -> PoolSyncOutcome:
        """New tasks are appended; after deletions (``reconcile``) missing ones are dropped too."""
        if not self.store.exists(project_id):
            return PoolSyncOutcome(project_id, False, NOT_CONNECTED)
        client = self.connections.client(project_id)
        spec = parse_label_config(client.projects.get(id=project_id).label_config)
        if reconcile:
            self.pool_cache.reconcile(client, project_id)
        pool = self.pool_cache.sync_new(client, project_id, spec)
        return PoolSyncOutcome(project_id, True, f"{len(pool.task_ids)} tasks cached")

    def metrics(self) -> dict[str, Any]:
        """Every project that exists on disk; one project's unreadable file shows as its
        ``error`` and never hides the others."""
        jobs = {s.name: s.snapshot() for s in (self.retrains, self.selections, self.pool_syncs)}
        projects = {str(pid): self.project_metrics_or_error(pid, jobs) for pid in sorted(self.known_projects())}
        return {"projects": projects, "jobs_backend": self.jobs.describe(), "settings": self.settings.public()}

    def project_metrics_or_error(self, project_id: int, jobs: dict[str, dict]) -> dict[str, Any]:
        try:
            return self.project_metrics(project_id, jobs)
        except (StateFileError, CyclesDBError, sqlite3.Error) as exc:
            logger.error("project %s: /metrics: %s", project_id, exc)
            return {"error": str(exc)}

    def project_metrics(self, project_id: int, jobs: dict[str, dict]) -> dict[str, Any]:
        manifest = self.store.manifest(project_id)
        labelled = read_labelled(self.store, project_id)
        per_class: dict[str, int] = {}
        for item in labelled.values():
            for label in item["labels"]:
                per_class[label] = per_class.get(label, 0) + 1
        queue = read_queue(self.store, project_id)
        return {
            "model_version": manifest.version if manifest else None,
            "model": manifest.info if manifest else None,
            "labels": {"total": len(labelled), "per_class": per_class,
                       "overridden": sum(1 for i in labelled.values() if i.get("overridden"))},
            "queue": {key: queue[key] for key in ("cycle", "model_version", "created_at", "counts")} if queue else None,
            "flagged_failures": len(self.failures.read(project_id)),
            "loop": self.loop.summary(project_id),
            "jobs": {name: snapshot.get(project_id, {"state": self.idle_state()}) for name, snapshot in jobs.items()},
        }

    def idle_state(self) -> str:
        """In-process job state is per gunicorn worker; RQ job state is shared by all."""
        return "idle" if self.jobs.mode == "rq" else "idle (this worker)"

    def known_projects(self) -> set[int]:
        return self.store.known_projects()
