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

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from backend.loop.cycle import CycleContext, read_queue, run_cycle
from backend.loop.failures import FailureLog
from backend.jobs.backends import JobBackend, job_backend, open_store
from backend.jobs.errors import JobQueueUnavailable
from backend.jobs.scheduler import JobState
from backend.model.labelconfig import parse_label_config
from backend.labelstudio.gateway import Connections
from backend.measure.loop_monitor import LoopMonitor
from backend.loop.pool_cache import PoolCache
from backend.loop.project_options import ProjectOptionsStore
from backend.outcome import JobOutcome
from backend.settings import Settings
from backend.store import ModelCache, atomic_write_json
from backend.loop.training import read_labelled, retrain

logger = logging.getLogger(__name__)

#: Marker file written when a retrain is requested. A retrain takes it up under the project's
#: ``train`` lock by renaming it to ``RUNNING_RETRAIN``, removed when the retrain has run; a
#: request arriving meanwhile writes a new ``PENDING_RETRAIN``. So the markers, not each
#: process's scheduler, say whether a retrain is still owed: a run that finds neither (another
#: gunicorn worker already trained after the last request) does nothing, and "at most one
#: follow-up retrain per project" holds across every worker of the server.
PENDING_RETRAIN = "retrain.pending"
RUNNING_RETRAIN = "retrain.running"


@dataclass(frozen=True)
class Degraded:
    """Background work is failing: a short reason code and the summarised errors behind it."""

    reason: str  # job_queue_unavailable | label_studio_unreachable
    detail: str


class Runtime:
    """The process's collaborators, composed: the cycle's (``cycle``, a :class:`CycleContext`),
    the job backend with its schedulers, and the loop monitor.

    Jobs chain through one mechanism, the schedulers' ``after`` callbacks, which get every
    ``done`` :class:`JobOutcome`: a retrain that produced a model requests a selection (unless
    ``LABELQUEUE_SELECT_AFTER_RETRAIN`` is off), and a selection that wrote a queue requests a
    measurement. Recording the queue in SQLite is part of the cycle itself (its ``recorder``),
    not a chained job, so the record can never miss a cycle.
    """

    def __init__(self, settings: Settings, jobs: JobBackend):
        self.settings = settings
        self.jobs = jobs
        self.store = open_store(settings, jobs)
        self.connections = Connections(settings, self.store)
        self.options = ProjectOptionsStore(settings, self.store)
        self.models = ModelCache(self.store)
        self.failures = FailureLog(self.store)
        self.loop = LoopMonitor(settings, self.store, self.connections, self.options, jobs)
        self.cycle = CycleContext(settings=settings, store=self.store, models=self.models,
                                  connections=self.connections,
                                  pool_cache=PoolCache(self.store, seed=settings.seed,
                                                       failure_field=settings.failure_rule()),
                                  failures=self.failures, options=self.options, scorer=jobs.scorer(self.store),
                                  recorder=self.loop)
        self.selections = jobs.scheduler("select", self.select, threads=settings.train_threads,
                                         after=[self.loop.after_cycle])
        after_retrain = [self.select_after] if settings.select_after_retrain else []
        self.retrains = jobs.scheduler("retrain", self.retrain_locked, threads=settings.train_threads,
                                       after=after_retrain)
        self.pool_syncs = jobs.scheduler("pool-sync", self.sync_pool, threads=1)

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        return cls(settings, job_backend(settings))

    def close(self) -> None:
        """Stop every scheduler of this process (waiting for runs in progress) and release the
        job backend: nothing of this runtime outlives it (tests build many)."""
        for scheduler in (self.retrains, self.selections, self.pool_syncs, self.loop.jobs):
            scheduler.close()
        self.jobs.close()

    def select_after(self, outcome: JobOutcome) -> None:
        """The step after a retrain that produced a model: compose a batch with it."""
        self.selections.request(outcome.project_id)

    def request_retrain(self, project_id: int, *, force: bool = False) -> str:
        """Schedule a retrain, first recording it on disk so a crash cannot lose it."""
        marker = self.store.project_dir(project_id) / PENDING_RETRAIN
        if not marker.exists() or force:
            atomic_write_json(marker, {"force": force})
        return self.retrains.request(project_id, force=force)

    def resume_interrupted(self, *, idle_only: bool = False) -> list[int]:
        """Re-request retrains that were requested but never finished (crash, kill -9, a request
        refused while Redis was down). ``idle_only``: skip projects whose retrain is queued,
        running, backing off, or failed on a bug (the workers' periodic check must not rerun a
        failing retrain every few seconds; a restart or the next webhook tries it again)."""
        resumed = []
        busy = {pid for pid, s in self.retrains.snapshot().items() if s["state"] != JobState.IDLE} if idle_only else set()
        for project_id in sorted(self.known_projects() - busy):
            force = self._marked_force(project_id)
            if force is None:
                continue
            logger.info("project %s: resuming a retrain interrupted before it finished", project_id)
            try:
                self.retrains.request(project_id, force=force)
            except JobQueueUnavailable as exc:  # the marker stays; the next start tries again
                logger.error("project %s: cannot resume the retrain now: %s", project_id, exc)
                continue
            resumed.append(project_id)
        return resumed

    def _marked_force(self, project_id: int) -> bool | None:
        """Whether a retrain is owed (pending, or interrupted while running), and if it is
        forced; None when none is owed."""
        project_dir = self.store.project_dir(project_id)
        owed = None
        for name in (RUNNING_RETRAIN, PENDING_RETRAIN):
            try:
                owed = bool(owed) | bool(json.loads((project_dir / name).read_text()).get("force"))
            except FileNotFoundError:
                continue
            except (OSError, ValueError, AttributeError):  # torn or tampered: still owed, not forced
                owed = bool(owed)
        return owed

    def retrain_locked(self, project_id: int, force: bool) -> JobOutcome:
        """Retrain under the project's ``train`` lock, so other processes wait their turn; first
        give Label Studio a moment to commit the annotation whose webhook asked for it. Does
        nothing when no retrain is owed any more (see ``PENDING_RETRAIN``)."""
        time.sleep(self.settings.retrain_settle_seconds)
        with self.store.lock(project_id, "train"):
            marked = self._marked_force(project_id)
            if marked is None:
                return JobOutcome(project_id, False, "already retrained since the last request (by another worker)")
            project_dir = self.store.project_dir(project_id)
            with contextlib.suppress(FileNotFoundError):  # atomic: a request from now on writes a new one
                os.replace(project_dir / PENDING_RETRAIN, project_dir / RUNNING_RETRAIN)
            outcome = retrain(project_id, settings=self.settings, store=self.store,
                              connections=self.connections, force=force or marked)
            (project_dir / RUNNING_RETRAIN).unlink(missing_ok=True)
            return outcome

    def degraded(self) -> Degraded | None:
        """Why background work is failing; None when all is well. ``/health`` shows only the
        reason code (anyone may call it), ``/metrics`` (behind auth) the detail too."""
        backend = self.jobs.problem()
        if backend:
            return Degraded("job_queue_unavailable", backend)
        problems = [f"project {pid} {s.name}: {reason}" for s in (self.retrains, self.selections, self.pool_syncs)
                    for pid, reason in s.degraded().items()]
        return Degraded("label_studio_unreachable", "; ".join(problems)) if problems else None

    def select(self, project_id: int, force: bool = False) -> JobOutcome:
        """``force``: on demand (always compose); otherwise after a retrain (skip if current)."""
        return run_cycle(self.cycle, project_id, force=force)

    def sync_pool(self, project_id: int, reconcile: bool) -> JobOutcome:
        """New tasks are appended; after deletions (``reconcile``) missing ones are dropped too."""
        client = self.connections.client(project_id)
        spec = parse_label_config(client.projects.get(id=project_id).label_config)
        if reconcile:
            self.cycle.pool_cache.reconcile(client, project_id)
        pool = self.cycle.pool_cache.sync_new(client, project_id, spec)
        return JobOutcome(project_id, True, f"{len(pool.task_ids)} tasks cached", figures={"pool_size": len(pool.task_ids)})

    def metrics(self) -> dict[str, Any]:
        jobs = {s.name: s.snapshot() for s in (self.retrains, self.selections, self.pool_syncs)}
        active = set().union(*(snapshot.keys() for snapshot in jobs.values()))
        projects = {str(pid): self.project_metrics(pid, jobs) for pid in sorted(self.known_projects() | active)}
        degraded = self.degraded()
        return {"projects": projects, "jobs_backend": self.jobs.describe(), "settings": self.settings.public(),
                "degraded": {"reason": degraded.reason, "detail": degraded.detail} if degraded else None}

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
            "queue": queue.summary() if queue else None,
            "flagged_failures": len(self.failures.read(project_id)),
            "loop": self.loop.summary(project_id),
            "jobs": {name: snapshot.get(project_id, {"state": self.idle_state()}) for name, snapshot in jobs.items()},
        }

    def idle_state(self) -> str:
        """In-process job state is per gunicorn worker; RQ job state is shared by all."""
        return JobState.IDLE if self.jobs.mode == "rq" else f"{JobState.IDLE} (this worker)"

    def known_projects(self) -> set[int]:
        root = self.store.data_dir / "projects"
        return {int(p.name) for p in root.iterdir() if p.name.isdigit()} if root.exists() else set()
